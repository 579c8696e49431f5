/** JSON over fetch, returning status, headers and the parsed body. */
export async function request(
  url: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (static files): the raw text is the body.
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

export async function startTask(baseUrl: string, body: unknown = {}): Promise<string> {
  const res = await request(`${baseUrl}/tasks`, { method: 'POST', body });
  if (res.status !== 202) throw new Error(`start failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.task_id as string;
}
