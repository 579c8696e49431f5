import type { StartTaskRequest } from '../client/api-client.js';
import { byId } from './dom.js';

/** One number field of the form: its input, its range and how the task names it. */
interface NumberField {
  input: string;
  param: string;
  label: string;
  min: number;
  max: number;
  integer?: boolean;
  /** Form value to param value (seconds to ms). */
  scale?: number;
}

/** The task types the form offers (the gateway's built-in ones), with the fields of their params. */
const TYPES: Record<string, { fieldset: string; fields: NumberField[] }> = {
  // The reference task allows up to 600 000 ms per stage.
  reference: {
    fieldset: 'reference-params',
    fields: [{ input: 'stage-s', param: 'stage_ms', label: 'Seconds per stage', min: 0, max: 600, scale: 1000 }],
  },
  typewriter: {
    fieldset: 'typewriter-params',
    fields: [
      { input: 'words', param: 'words', label: 'Words', min: 1, max: 100_000, integer: true },
      { input: 'words-per-s', param: 'words_per_s', label: 'Words per second', min: 0.1, max: 100_000 },
    ],
  },
};

export type StartRequest = { ok: true; body: StartTaskRequest } | { ok: false; error: string; input: HTMLInputElement };

/** The Start New Task form: a task type and the fields of its params; an empty field takes the task's default. */
export class StartForm {
  private readonly type = byId<HTMLSelectElement>('task-type');

  constructor() {
    this.type.addEventListener('change', () => this.showFields());
    this.showFields();
  }

  /** The request the form describes, or the first invalid field (marked aria-invalid). */
  read(): StartRequest {
    const typeName = this.type.value;
    const params: Record<string, number> = {};
    for (const field of TYPES[typeName]!.fields) {
      const input = byId<HTMLInputElement>(field.input);
      const text = input.value.trim();
      const value = Number(text);
      // A number box the browser cannot read (`1e`, `--1`) reports an empty value and badInput:
      // refused, never taken as an empty field (the task's default).
      const inRange = Number.isFinite(value) && value >= field.min && value <= field.max && (!field.integer || Number.isInteger(value));
      const valid = !input.validity.badInput && (text === '' || inRange);
      input.setAttribute('aria-invalid', String(!valid));
      if (!valid) {
        const kind = field.integer ? 'a whole number' : 'a number';
        return { ok: false, input, error: `${field.label} must be ${kind} from ${field.min} to ${field.max}.` };
      }
      if (text !== '') params[field.param] = field.scale === undefined ? value : Math.round(value * field.scale);
    }
    return { ok: true, body: Object.keys(params).length > 0 ? { type: typeName, params } : { type: typeName } };
  }

  private showFields(): void {
    for (const [name, { fieldset }] of Object.entries(TYPES)) byId(fieldset).hidden = name !== this.type.value;
  }
}
