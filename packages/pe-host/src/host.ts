import type { Duplex, Readable, Writable } from 'node:stream';
import type { BatchedFile, ReadFilesOptions } from './batch.js';
import type { BatchWrite, WriteFilesOptions } from './batch-write.js';
import type { Redactor } from './redact.js';

export interface ExecOptions {
  /** Run as root: through `sudo` when the login user is not root. */
  sudo?: boolean;
  /** Kill the command (on the host, not just the local wait) after this long. Default 10 minutes. */
  timeoutMs?: number;
  /** Bytes for the command's standard input. */
  stdin?: string | Buffer;
  /** Environment for the command: carried over stdin, never in argv; the values are treated as secrets. */
  env?: Record<string, string>;
  cwd?: string;
  /** Return the result for a non-zero exit instead of throwing CommandFailedError. */
  allowFailure?: boolean;
  /** Extra secret values to mask in errors and records. */
  secrets?: readonly string[];
  /** Declares that the command changes nothing: DryRunHost runs it for real instead of recording it. */
  readOnly?: boolean;
  /**
   * Declares the files the command may change: these paths, each with
   * everything below it (`[]`: no file, e.g. a service restart or a
   * `SELECT pg_reload_conf()`). Unlike `readOnly` it still changes the host
   * (DryRunHost records it); a cache of the host's files (pe-cluster's) then
   * forgets only these paths instead of everything, and no other host's files.
   * Unset: the command may change any file.
   */
  changesFiles?: readonly string[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

export interface StreamingExec {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles when the command exits: the result with empty stdout/stderr (they were streamed). */
  done: Promise<ExecResult>;
}

export interface FileStat {
  size: number;
  /** Permission bits, e.g. 0o640. */
  mode: number;
  uid: number;
  gid: number;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  mtimeMs: number;
}

export interface WriteOptions {
  /** Permission bits for the file; default: the existing file's, else 0o644. */
  mode?: number;
  /** Owner (name or uid); default: the existing file's, else the writer. */
  owner?: string | number;
  group?: string | number;
  /** Keep a timestamped copy of the old content beside the file (default true). */
  backup?: boolean;
  /** Write as root through sudo when the login user is not root. Default true for SshHost writes outside the user's home. */
  sudo?: boolean;
  /** Values to mask in the recorded diff (DryRunHost) on top of the host's redactor. */
  secrets?: readonly string[];
}

export interface WriteResult {
  path: string;
  changed: boolean;
  /** Path of the backup of the previous content, when one was made. */
  backup?: string;
}

export interface ReadOptions {
  sudo?: boolean;
}

export interface RemoveOptions {
  sudo?: boolean;
  recursive?: boolean;
}

export interface Forward {
  /** 127.0.0.1 port on the controller that leads to host:port as seen from the remote. */
  localPort: number;
  close(): Promise<void>;
}

/** One thing that was (or, under DryRunHost, would have been) changed on a host. */
export type Mutation =
  | { kind: 'exec'; host: string; argv: string[]; sudo: boolean }
  | {
      kind: 'write';
      host: string;
      path: string;
      diff: string;
      created: boolean;
      mode?: number;
      owner?: string | number;
      group?: string | number;
    }
  | { kind: 'remove'; host: string; path: string; recursive: boolean }
  | { kind: 'mkdir'; host: string; path: string };

/**
 * Everything remote goes through this interface. Implementations: SshHost
 * (ssh2, one connection, channels), LocalHost (this machine), DryRunHost
 * (wraps another; reads pass through, mutations are recorded, not done).
 * A wrapper passes every member on, the batch capabilities (`readFiles`,
 * `writeFiles`, `actsAsRoot`) included; a host with nothing better does them
 * file by file (`readFilesOneByOne`, `writeFilesOneByOne`).
 */
export interface Host {
  /** The name used in messages and records (inventory name or FQDN). */
  readonly name: string;
  readonly redactor: Redactor;
  /**
   * Every command and file access runs as root (SshHost logged in as root), so
   * `sudo` makes no difference to what is seen. false when not known.
   */
  readonly actsAsRoot: boolean;
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** A command whose stdio are streams (e.g. tar). */
  spawn(argv: readonly string[], opts?: Omit<ExecOptions, 'stdin' | 'allowFailure'>): Promise<StreamingExec>;
  readFile(path: string, opts?: ReadOptions): Promise<Buffer>;
  /** Atomic: temp file in the same directory, fsync, rename. Backup, owner/mode kept; no-op if equal. */
  writeFile(path: string, data: string | Buffer, opts?: WriteOptions): Promise<WriteResult>;
  /**
   * Several files, each as writeFile writes it; results in the order given.
   * SshHost: one command; elsewhere one writeFile after another.
   */
  writeFiles(files: readonly BatchWrite[], opts?: WriteFilesOptions): Promise<WriteResult[]>;
  /**
   * Many paths' lstat and, unless `statOnly`, content (see BatchedFile).
   * SshHost: one command; elsewhere a stat and a read per path.
   */
  readFiles(paths: readonly string[], opts?: ReadFilesOptions): Promise<Map<string, BatchedFile>>;
  /** undefined when the path does not exist. */
  stat(path: string, opts?: ReadOptions): Promise<FileStat | undefined>;
  exists(path: string, opts?: ReadOptions): Promise<boolean>;
  /** No error when the path is already absent. Returns whether something was removed. */
  remove(path: string, opts?: RemoveOptions): Promise<boolean>;
  mkdir(path: string, opts?: { mode?: number; sudo?: boolean }): Promise<void>;
  /** A local 127.0.0.1 port tunnelled to host:port as reached from this host. */
  forward(port: number, host?: string): Promise<Forward>;
  /** A stream to host:port as reached from this host. */
  connect(port: number, host?: string): Promise<Duplex>;
  close(): Promise<void>;
}
