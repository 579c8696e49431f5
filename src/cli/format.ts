import type { TaskState } from '../wire/task-state.js';

const BAR_WIDTH = 30;

/** `[#########---------------------]  30% PROCESSING` */
export function progressBar(progress: number, status: string): string {
  const clamped = Math.max(0, Math.min(100, progress));
  const filled = Math.round((clamped / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(clamped).padStart(3)}% ${status}`;
}

/** One task on one line: id, status, progress, type, creation time. */
export function taskRow(t: TaskState): string {
  return `${t.task_id}  ${t.status.padEnd(10)} ${String(t.progress).padStart(3)}%  ${t.type}  ${new Date(t.created_at).toISOString()}`;
}
