/**
 * Output paths the user names (`--results`, `--output-file`, `--out`) are
 * tried before anything is built or booted: a path that cannot be written is
 * a usage error naming the option, not a failure after the whole run. The
 * check really creates (and removes) a file, because access(2) says yes to
 * root on places such as /proc where no file can be created.
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../exit-codes.js';

function cannotWrite(option: string, what: string, error: unknown): UserError {
  if (error instanceof UserError) return error;
  const { code, message } = error as NodeJS.ErrnoException;
  const reason = code !== undefined ? message.slice(0, message.indexOf(',')).replace(`${code}: `, '') : message;
  return new UserError(`${option}: cannot write ${what} (${code ?? 'error'}: ${reason})`);
}

/**
 * mkdir -p, one directory at a time: Node's recursive mkdirSync loops forever
 * where mkdir(2) answers ENOENT under an existing parent (/proc/a/b).
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !existsSync(at); at = path.dirname(at)) missing.unshift(at);
  for (const each of missing) mkdirSync(each);
}

/** A directory can be made for `dir` and a new file created in it. */
export function checkWritableDir(dir: string, option: string): void {
  const probe = path.join(dir, `.mmapkit-write-test-${process.pid}`);
  try {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`${option}: ${dir} is not a directory`);
    makeDirs(dir);
    closeSync(openSync(probe, 'wx'));
    rmSync(probe);
  } catch (error) {
    throw cannotWrite(option, `into ${dir}`, error);
  }
}

/** `file` can be written: opened for writing if it exists (never truncated here), else created in a directory that can be made. */
export function checkWritableFile(file: string, option: string): void {
  try {
    if (!existsSync(file)) {
      makeDirs(path.dirname(path.resolve(file)));
      closeSync(openSync(file, 'wx'));
      rmSync(file);
      return;
    }
    const stat = statSync(file);
    if (stat.isDirectory()) throw new UserError(`${option}: ${file} is a directory, not a file`);
    // A FIFO or a terminal (/dev/stdout) is not opened here: opening one can block.
    if (stat.isFile()) closeSync(openSync(file, constants.O_WRONLY));
    else accessSync(file, constants.W_OK);
  } catch (error) {
    throw cannotWrite(option, file, error);
  }
}
