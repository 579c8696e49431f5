// Minimal page for the pipeline: start a task, observe one by id, one line per event, and resume
// after a disconnect with ?lastEventId so no stage is lost or repeated.
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const FINAL_CLOSE = new Set([1000, 4400, 4404]);
const log = document.getElementById('log');
const error = document.getElementById('error');

function line(text) {
  const li = document.createElement('li');
  li.textContent = text;
  log.append(li);
}

function watch(taskId) {
  let lastEventId = '';
  let delay = 500;
  const connect = () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = lastEventId ? `?lastEventId=${encodeURIComponent(lastEventId)}` : '';
    const ws = new WebSocket(`${proto}//${location.host}/ws/task/${encodeURIComponent(taskId)}${query}`);
    ws.onopen = () => { delay = 500; };
    ws.onmessage = (msg) => {
      const event = JSON.parse(msg.data);
      lastEventId = event.id;
      line(`Task: ${event.task_id}, Status: ${event.status}, Progress: ${event.progress}%`);
    };
    ws.onclose = (e) => {
      if (FINAL_CLOSE.has(e.code)) {
        if (e.code !== 1000) error.textContent = `${taskId}: ${e.reason}`;
        return;
      }
      line(`Disconnected from ${taskId}. Reconnecting…`);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  };
  connect();
}

document.getElementById('start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  error.textContent = '';
  const seconds = e.target.stage_s.value;
  const body = seconds === '' ? {} : { stage_ms: Math.round(Number(seconds) * 1000) };
  try {
    const res = await fetch('/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error?.message ?? res.statusText);
    watch(data.task_id);
  } catch (err) {
    error.textContent = `Could not start a task: ${err.message}`;
  }
});

document.getElementById('observe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  error.textContent = '';
  watch(e.target.task_id.value.trim());
});
