import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient, ApiError, type TaskListFilter } from '../client/api-client.js';
import { taskRow } from './format.js';
import { DEFAULT_OUTPUT_LINES, inspectTask, parseOutputLines } from './inspect-command.js';
import { EXIT, UNAUTHORIZED_HINT, UsageError, type CliIo } from './io.js';
import { startTask } from './start-command.js';
import { watchTask } from './watch-command.js';

export const DEFAULT_URL = 'http://127.0.0.1:8000';

type Options = NonNullable<ParseArgsConfig['options']>;

/** `ls` flags and the GET /tasks filters they set. */
const LIST_FILTERS: [string, keyof TaskListFilter][] = [
  ['status', 'status'], ['type', 'type'], ['tag', 'tag'], ['created-after', 'created_after'], ['created-before', 'created_before'],
];

/** `text` as one word for a POSIX shell: as it is when it is plain, else single-quoted. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_.:=@/+,-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

interface Command {
  usage: string;
  summary: string;
  options: Options;
  run(io: CliIo, ctx: { api: ApiClient; baseUrl: string; token: string | undefined; values: Record<string, unknown>; positionals: string[] }): Promise<number>;
}

const COMMON = `Common options:
  --url URL     gateway base URL (default: $TASKCAST_URL, else ${DEFAULT_URL})
  --token T     API token, or for watch and inspect the task's watch token, when the gateway has
                auth on (default: $TASKCAST_TOKEN); sent as an Authorization header, never in a URL
  --help        show this help`;

const commands: Record<string, Command> = {
  start: {
    usage: `taskcast start [--type T] [--params JSON] [--stage-ms N] [--tag T]... [--idempotency-key K] [--priority P]
                [--delay-ms N | --run-at T] [--concurrency-key K] [--watch] [--json]

Starts a task and prints its id (with --json, its state).
  --type T        task type (default: the server's default type)
  --params JSON   task params as a JSON object, e.g. '{"stage_ms":100}'
  --stage-ms N    milliseconds per stage (sets params.stage_ms)
  --tag T         a tag (repeat for more, up to 10), e.g. --tag nightly --tag customer:42
  --idempotency-key K   run again with the same K and request: prints the task the first run started
  --priority P    high, normal (default) or low
  --delay-ms N    start it N milliseconds from now (SCHEDULED until then)
  --run-at T      start it at T (RFC 3339, e.g. 2026-12-24T09:00:00Z, or epoch ms; at most SCHEDULE_MAX_AHEAD_S ahead)
  --concurrency-key K  share the type's per-key concurrency limit with the tasks of key K
  --watch         then watch it to the end, as \`taskcast watch\` (same output and exit codes)
  --json          JSON output`,
    summary: 'start a task (and optionally watch it)',
    options: {
      type: { type: 'string' }, params: { type: 'string' }, 'stage-ms': { type: 'string' }, tag: { type: 'string', multiple: true },
      'idempotency-key': { type: 'string' }, priority: { type: 'string' }, 'delay-ms': { type: 'string' }, 'run-at': { type: 'string' },
      'concurrency-key': { type: 'string' }, watch: { type: 'boolean' }, json: { type: 'boolean' },
    },
    run: (io, { api, baseUrl, token, values }) => startTask(io, api, { baseUrl, token }, values),
  },
  watch: {
    usage: `taskcast watch <id> [--last-event-id X] [--json]

Watches a task to its end, resuming after disconnects. Exit code: 0 COMPLETED, 1 FAILED,
3 CANCELLED, 4 unknown task, 2 bad id, 5 other errors, 6 token refused, 130 interrupted.

stdout gets the task's output (text chunks as they are, records as one JSON line each), and on
a terminal the progress bar; notices, the result and the final status go to stderr.
- When stdout is a terminal, output chunks print as they arrive, above a live progress bar that shows the
  latest progress message; the result follows the bar as pretty JSON. A restarted stage (a new
  run, or a retry after a failed attempt) voids the output it had printed: a notice says so and
  that output follows again.
- Elsewhere (\`watch <id> > out.txt\`, a pipe) stdout gets committed output only, written when its
  stage ends, so it holds the output exactly once, as GET /tasks/<id>/output has it; stderr gets
  one line per stage, progress (with its message) and restart event, and the result on one line.
  --last-event-id X   only events after this event id (and only the output they bring)
  --json              every event as one JSON line on stdout, nothing else there`,
    summary: 'watch a task live: its output, progress bar and result (or --json)',
    options: { 'last-event-id': { type: 'string' }, json: { type: 'boolean' } },
    run: (io, { baseUrl, token, values, positionals }) =>
      watchTask(io, {
        baseUrl,
        token,
        taskId: onePositional(positionals, 'task id'),
        lastEventId: values['last-event-id'] as string | undefined,
        json: values.json === true,
      }),
  },
  ls: {
    usage: `taskcast ls [--limit N] [--cursor C] [--status S] [--type T] [--tag T] [--created-after X] [--created-before X] [--json]

Lists recent tasks, newest first, that match every filter given.
  --limit N             tasks per page (1 to 100, default 20)
  --cursor C            continue after a previous page (printed at its end, with its filters)
  --status S            only tasks in this status, e.g. FAILED
  --type T              only tasks of this type
  --tag T               only tasks started with this tag
  --created-after X     only tasks created at or after X (epoch ms or RFC 3339, e.g. 2026-01-01T00:00:00Z)
  --created-before X    only tasks created before X
  --json                the page as JSON
A filtered page may hold fewer than N tasks (even none) and still be followed by more.`,
    summary: 'list recent tasks (filter by status, type, tag, creation time)',
    options: {
      limit: { type: 'string' }, cursor: { type: 'string' }, json: { type: 'boolean' },
      ...Object.fromEntries(LIST_FILTERS.map(([flag]) => [flag, { type: 'string' }])),
    },
    async run(io, { api, values }) {
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !Number.isInteger(limit)) throw new UsageError('--limit must be a whole number');
      const given = LIST_FILTERS.filter(([flag]) => typeof values[flag] === 'string');
      const filter: TaskListFilter = Object.fromEntries(given.map(([flag, name]) => [name, values[flag] as string]));
      const page = await api.list({ ...(limit === undefined ? {} : { limit }), cursor: (values.cursor as string | undefined) ?? null, filter });
      if (values.json) {
        io.stdout.write(`${JSON.stringify(page)}\n`);
        return EXIT.OK;
      }
      for (const t of page.tasks) io.stdout.write(`${taskRow(t)}\n`);
      if (page.next_cursor) {
        const flags = given.map(([flag]) => ` --${flag} ${shellWord(values[flag] as string)}`).join('');
        io.stderr.write(`more: taskcast ls --cursor ${page.next_cursor}${flags}\n`);
      }
      return EXIT.OK;
    },
  },
  cancel: {
    usage: `taskcast cancel <id>

Asks the server to cancel a task; a watcher then sees CANCELLED.`,
    summary: 'cancel a task',
    options: {},
    async run(io, { api, positionals }) {
      const taskId = onePositional(positionals, 'task id');
      await api.cancel(taskId);
      io.stdout.write(`cancel requested for ${taskId}\n`);
      return EXIT.OK;
    },
  },
  inspect: {
    usage: `taskcast inspect <id> [--output-lines N|all] [--json]

Prints a task's state, its latest progress message, its result, its event history (each run of
output events on one row) and its output as the exactly-once rule makes it (GET /tasks/<id>/output).
  --output-lines N   show the last N lines of the output (default ${DEFAULT_OUTPUT_LINES}); all: every line
  --json             {"state": ..., "events": [every event], "output": "the whole output text"}`,
    summary: 'show a task state, result, output and full event history',
    options: { json: { type: 'boolean' }, 'output-lines': { type: 'string' } },
    run: (io, { api, positionals, values }) =>
      inspectTask(io, api, onePositional(positionals, 'task id'), {
        json: values.json === true,
        outputLines: parseOutputLines(values['output-lines'] as string | undefined),
      }),
  },
};

const GLOBAL_USAGE = `taskcast: start and watch taskcast tasks from a terminal or a script.

Usage: taskcast <command> [options]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Run \`taskcast <command> --help\` for a command's options.

${COMMON}`;

/** The schemes of a gateway URL. */
const URL_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:']);

function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0]!;
}

/** Runs one command line; returns the exit code. Never exits the process itself. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${GLOBAL_USAGE}\n`);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const command = commands[name];
  if (!command) {
    io.stderr.write(`taskcast: unknown command ${JSON.stringify(name)}\n\n${GLOBAL_USAGE}\n`);
    return EXIT.USAGE;
  }
  const help = `${command.usage}\n\n${COMMON}\n`;
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, url: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.stdout.write(help);
      return EXIT.OK;
    }
    const baseUrl = (values.url as string | undefined) ?? (io.env.TASKCAST_URL || DEFAULT_URL);
    if (!URL.canParse(baseUrl) || !URL_SCHEMES.has(new URL(baseUrl).protocol)) {
      throw new UsageError(`invalid --url ${JSON.stringify(baseUrl)}: expected an http:// or https:// URL`);
    }
    const token = (values.token as string | undefined) || io.env.TASKCAST_TOKEN || undefined;
    return await command.run(io, { api: new ApiClient(baseUrl, { token }), baseUrl, token, values, positionals });
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`taskcast ${name}: ${(err as Error).message}\n\n${help}`);
      return EXIT.USAGE;
    }
    if (err instanceof ApiError) {
      io.stderr.write(`taskcast ${name}: ${err.message}${err.status ? ` (${err.code}, HTTP ${err.status})` : ''}\n`);
      for (const line of detailLines(err.details)) io.stderr.write(`taskcast ${name}:   ${line}\n`);
      if (err.status === 401) {
        io.stderr.write(`taskcast ${name}: ${UNAUTHORIZED_HINT}\n`);
        return EXIT.UNAUTHORIZED;
      }
      return err.status === 404 || err.status === 400 || err.status === 422 ? EXIT.NOT_FOUND : EXIT.ERROR;
    }
    throw err;
  }
}

/**
 * An API error's details as lines: each invalid field of a 400 (the server's validation issues) as
 * `field: problem`, anything else as its JSON.
 */
function detailLines(details: unknown): string[] {
  if (details === undefined || details === null) return [];
  const issues = Array.isArray(details) ? details : [details];
  return issues.map((issue: unknown) => {
    const { path, message } = (issue ?? {}) as { path?: unknown; message?: unknown };
    if (typeof message === 'string' && Array.isArray(path)) return `${path.length > 0 ? path.join('.') : '(body)'}: ${message}`;
    return JSON.stringify(issue);
  });
}
