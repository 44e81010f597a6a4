/**
 * The `python` request: a python3 program run in the guest for the calls the
 * addon does not offer (test/conformance/cases/vma.ts python()), without a
 * python3 start per program. Under TCG a start costs about 1.5 s (the
 * interpreter and ctypes read over the guest's 9p root); a fork of a python3
 * that already started costs a few ms.
 *
 * So the agent starts one python3, the zygote below, at the first request,
 * and keeps it: for each program it forks a child that runs the program as
 * `python3 -c` would (fresh globals, `__name__` '__main__'), its stdout and
 * stderr one pipe, stdin /dev/null, the request's environment added. An fd
 * of the agent to hand over becomes the child's fd 3 through pidfd_getfd(2):
 * the agent's own open file, as an fd inherited or passed over a socket is,
 * never a second open of the node. The zygote answers one program at a time,
 * in order, as its parent waits for each child.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type PythonArgs, type PythonResult, LineDecoder } from './protocol.js';

/** python3 -I -S: no site module, user site or PYTHON* variables (file lookups over 9p at every start). */
const ZYGOTE = String.raw`
import ctypes, errno, json, os, signal, sys, traceback
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_PIDFD_GETFD = 438  # x86_64, since 5.6
AGENT = os.getppid()
PIDFD = os.pidfd_open(AGENT)

def child(request, w):
    os.dup2(w, 1)
    os.dup2(w, 2)
    os.close(w)
    null = os.open('/dev/null', os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    fd = request.get('fd')
    if fd is not None:
        got = libc.syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_int(PIDFD), ctypes.c_int(fd), ctypes.c_uint(0))
        if got < 0:
            raise OSError(ctypes.get_errno(), 'pidfd_getfd of the agent fd %d' % fd)
        if got != 3:
            os.dup2(got, 3, inheritable=True)
            os.close(got)
    if PIDFD != 3 or fd is None:
        os.close(PIDFD)
    os.environ.update(request.get('env') or {})
    sys.argv = ['-c']
    exec(compile(request['program'], '<string>', 'exec'), {'__name__': '__main__', '__builtins__': __builtins__})

def run(request):
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(r)
            child(request, w)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            status = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    output = b''.join(chunks).decode('utf-8', 'replace')
    if os.WIFSIGNALED(status):
        return {'code': None, 'signal': signal.Signals(os.WTERMSIG(status)).name, 'output': output}
    return {'code': os.WEXITSTATUS(status), 'signal': None, 'output': output}

for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {'id': request['id'], 'ok': True, 'value': run(request)}
    except Exception as e:
        answer = {'id': request['id'], 'ok': False, 'message': '%s: %s' % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(answer) + '\n')
    sys.stdout.flush()
`;

interface Waiting {
  resolve: (result: PythonResult) => void;
  reject: (error: Error) => void;
}

type ZygoteAnswer = { id: number; ok: true; value: PythonResult } | { id: number; ok: false; message: string };

/** The agent's one zygote, started at the first program and again after it died. */
export class PythonHost {
  private zygote: ChildProcess | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;

  run(args: PythonArgs): Promise<PythonResult> {
    const zygote = this.zygote ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      zygote.stdin!.write(`${JSON.stringify({ id, program: args.program, env: args.env ?? {}, fd: args.fd ?? null })}\n`);
    });
  }

  private start(): ChildProcess {
    const zygote = spawn('python3', ['-I', '-S', '-c', ZYGOTE], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.zygote = zygote;
    const decoder = new LineDecoder();
    zygote.stdout!.on('data', (chunk: Buffer) => {
      for (const line of decoder.push(chunk)) this.answer(JSON.parse(line) as ZygoteAnswer);
    });
    const died = (why: string): void => {
      if (this.zygote !== zygote) return;
      this.zygote = undefined;
      for (const { reject } of this.waiting.values()) reject(new Error(`the python3 zygote ${why}`));
      this.waiting.clear();
    };
    zygote.on('error', (error) => died(`could not run: ${error.message}`));
    zygote.on('close', (code, signal) => died(`exited (${signal ?? `status ${String(code)}`})`));
    return zygote;
  }

  private answer(message: ZygoteAnswer): void {
    const waiting = this.waiting.get(message.id);
    if (waiting === undefined) return;
    this.waiting.delete(message.id);
    if (message.ok) waiting.resolve(message.value);
    else waiting.reject(new Error(`the python3 zygote: ${message.message}`));
  }
}
