/** Reads a JWT's `exp` without verifying it (the server verifies), to refresh a token before it expires. */

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const binary = atob(b64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The token's `exp` in milliseconds since the Unix epoch, or null when it is not a JWT or has no numeric `exp`. */
export function tokenExpiryMs(token: string): number | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const payload: unknown = JSON.parse(base64UrlDecode(parts[1]));
    const exp = (payload as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** How long from `nowMs` to refresh a token expiring at `expMs`: `aheadMs` before it, or half-way
 * when the token has less than twice that left (a short-lived token); never negative. */
export function refreshDelayMs(expMs: number, nowMs: number, aheadMs: number): number {
  const left = expMs - nowMs;
  return Math.max(0, left - aheadMs, Math.floor(left / 2));
}
