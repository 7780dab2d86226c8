import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 /
 * 7677), computed here so that `ALTER ROLE ... PASSWORD '<verifier>'` never
 * sends the clear password to the server, where a statement log could keep
 * it. Same approach as psql's \password and libpq's PQencryptPasswordConn.
 */
export function scramVerifier(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(Buffer.from(password.normalize('NFKC'), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A random password for a role we create (base64url, 32 characters, 192 bits). */
export function randomPassword(): string {
  return randomBytes(24).toString('base64url');
}
