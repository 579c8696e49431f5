const KEY = 'taskcast.apiToken';

/**
 * The API token the user signed in with: in sessionStorage only, so it lasts as long as the
 * browser tab and is never in the URL, in history or in a log (the page sends it only as an
 * Authorization header, see ApiClient).
 */
export class SessionToken {
  constructor(private readonly storage: Storage) {}

  get token(): string | undefined {
    return this.storage.getItem(KEY) || undefined;
  }

  set(token: string): void {
    this.storage.setItem(KEY, token);
  }

  clear(): void {
    this.storage.removeItem(KEY);
  }
}
