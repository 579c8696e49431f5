/**
 * The screen a terminal of `columns` columns shows after `bytes` (no height limit: rows scroll
 * into the result). Knows what the CLI writes: printable characters with auto-wrap (and the
 * pending wrap at the last column), CR, LF, tab, CSI K (erase line), CSI A (up), CSI G (column).
 */
export function renderTerminal(bytes: string, columns: number): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  let pendingWrap = false;
  const line = () => (rows[row] ??= []);
  for (let i = 0; i < bytes.length; i++) {
    const ch = bytes[i]!;
    if (ch === '\x1b' && bytes[i + 1] === '[') {
      const match = /^\x1b\[(\d*)([A-Za-z])/.exec(bytes.slice(i, i + 12));
      if (!match) throw new Error(`unknown escape at ${i}: ${JSON.stringify(bytes.slice(i, i + 12))}`);
      i += match[0].length - 1;
      const n = match[1] === '' ? undefined : Number(match[1]);
      pendingWrap = false;
      if (match[2] === 'K' && (n ?? 0) === 2) rows[row] = [];
      else if (match[2] === 'A') row = Math.max(0, row - (n ?? 1));
      else if (match[2] === 'G') col = Math.min(columns, n ?? 1) - 1;
      else throw new Error(`unknown escape ${JSON.stringify(match[0])}`);
    } else if (ch === '\r') {
      col = 0;
      pendingWrap = false;
    } else if (ch === '\n') {
      row++;
      line();
      pendingWrap = false;
    } else if (ch === '\t') {
      col = Math.min(columns - 1, (Math.floor(col / 8) + 1) * 8);
    } else if (ch >= ' ') {
      if (pendingWrap) {
        row++;
        col = 0;
        pendingWrap = false;
      }
      const cells = line();
      while (cells.length < col) cells.push(' ');
      cells[col] = ch;
      if (col === columns - 1) pendingWrap = true;
      else col++;
    }
  }
  return rows.map((cells) => (cells ?? []).join('').trimEnd());
}
