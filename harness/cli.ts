#!/usr/bin/env node
/**
 * The CLI only wires commands; each command is a typed function that tests call directly. One
 * top-level catch maps errors to exit codes: 0 pass, 1 a verdict failed, 2 bad usage/config,
 * 3 environment, 4 inconclusive (a check failed on a machine too loaded to judge); 130 after
 * SIGINT (Ctrl-C), 143 after SIGTERM, once everything is reverted. stdout carries results only;
 * logs go to stderr.
 *
 * The signal handlers are installed before anything else is loaded: importing the CLI's
 * dependencies takes 50-200 ms (more on a loaded machine), and a SIGTERM in that time would
 * otherwise kill the process with Node's default action instead of exiting 143. So this file
 * imports nothing statically but types; everything else is loaded lazily below.
 */
import type { Logger } from './core/log.js';
import type { Session } from './core/session.js';

const EXIT_ON_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const;
type Signal = keyof typeof EXIT_ON_SIGNAL;

/** Until a run can have changed anything there is nothing to revert: exit at once. */
const onSignal: { handle: (sig: Signal) => void } = { handle: (sig) => process.exit(EXIT_ON_SIGNAL[sig]) };
for (const sig of Object.keys(EXIT_ON_SIGNAL) as Signal[]) process.on(sig, () => onSignal.handle(sig));

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function main(all: string[]): Promise<number> {
  // `harness run … -- COMMAND ARG…`: everything after the first `--` is the user's client command,
  // taken out before commander sees it (it would otherwise read it as more scenario names).
  const dd = all.indexOf('--');
  const argv = dd >= 0 ? all.slice(0, dd) : all;
  const clientArgv = dd >= 0 ? all.slice(dd + 1) : undefined;
  const [{ Command, CommanderError, Option }, { formatError, HarnessError }, { createLogger }, { Session }] = await Promise.all([
    import('commander'),
    import('./core/errors.js'),
    import('./core/log.js'),
    import('./core/session.js'),
  ]);
  const log: Logger = createLogger();
  const session: Session = new Session();
  let exitCode = 0;
  const write = (s: string) => process.stdout.write(s);

  // From here on a signal stops every run in flight at its next stage; each reverts what it
  // journaled (also what a stage in flight created after the signal); then whatever is left is
  // reverted and the process exits 130/143. A second signal only says that it is still reverting.
  let reverting: Promise<unknown> | undefined;
  onSignal.handle = (sig) => {
    if (reverting) return log.warn({ signal: sig }, 'still reverting; `harness gc` cleans up after a kill -9');
    log.warn({ signal: sig, runs: session.active }, 'interrupted: reverting');
    session.interrupt(sig);
    reverting = session
      .idle(60_000)
      .then(() => session.revertAll())
      .finally(() => process.exit(EXIT_ON_SIGNAL[sig]));
  };

  const program = new Command('harness')
    .description('Fault-injection test harness: reproduce TCP failures in real network namespaces and prove what happened.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('run')
    .description('run one or more scenarios (concurrently, each in its own namespaces)')
    .argument('[scenario...]', 'scenario names (harness list)')
    .option('--all', 'run the whole catalogue')
    .option('--target <name>', 'target: a built-in one or one from the config file')
    .option('--sysctl <side:key=value>', 'set a sysctl in the client or server namespace (repeatable)', collect)
    .option('--set <param=value>', "set a scenario parameter (repeatable; see harness list)", collect)
    .option('--kernel-defaults', "use the kernel's default sysctls instead of the fast ones")
    .option('--blocking', "the probe's connect/read/write/close block, like most real clients (default: non-blocking + epoll)")
    .option('--json', 'print one Result object per line (NDJSON)')
    .option('--pcap <dir>', 'write packet captures of both namespaces (client and server) into <dir>')
    .option('--report <dir>', 'write an HTML page per run (sequence diagram, states against the prediction, checks) and an index into <dir>')
    .option('--junit <file>', 'write a JUnit XML report (one testcase per scenario run) to <file>')
    .option('--config <file>', 'config file with your targets (default: harness.config.json/.yaml in the current directory; .js/.mjs only when named here)')
    .option('--port <port>', 'port of the built-in target (default 9000)')
    .option('--sysctls-from <file>', "apply a production machine's `sysctl -a` TCP settings in both namespaces")
    .option('--plan <file>', 'run the runs of a plan file (YAML or JSON list) instead of scenario names')
    .option('--shard <i/n>', 'with --plan: run only shard I of N (balanced by predicted duration)')
    .option('--client-image <image>', 'container targets: run the client command (after --) in a container of this image, in the client namespace')
    .option('--strike <when>', 'when a mid-connection fault strikes your client: established[+DURATION] (default) or at:DURATION')
    .option('--client-timeout <duration>', "kill the client after this long (default: the kernel's predicted end plus a margin)")
    .option('--expect-exit <code>', 'your client must exit with CODE, 0 or nonzero')
    .option('--expect-within <duration>', 'your client must end within DURATION (e.g. 3s)')
    .addHelpText('after', '\nYour own client: harness run SCENARIO [options] -- COMMAND [ARG…]   ({host} and {port} are filled in)')
    .action(async (scenarios: string[], opts: Record<string, unknown>) => {
      const { runCommand } = await import('./commands/run.js');
      const r = await runCommand(
        {
          scenarios,
          all: Boolean(opts.all),
          // Passed on even when empty: `--target ''` is a mistake to report, not the default.
          ...(opts.target !== undefined ? { target: String(opts.target) } : {}),
          sysctl: (opts.sysctl as string[] | undefined) ?? [],
          set: (opts.set as string[] | undefined) ?? [],
          json: Boolean(opts.json),
          ...(opts.pcap !== undefined ? { pcap: String(opts.pcap) } : {}),
          ...(opts.report !== undefined ? { report: String(opts.report) } : {}),
          ...(opts.junit !== undefined ? { junit: String(opts.junit) } : {}),
          kernelDefaults: Boolean(opts.kernelDefaults),
          ...(opts.blocking ? { blocking: true } : {}),
          ...(opts.config !== undefined ? { config: String(opts.config) } : {}),
          ...(opts.port !== undefined ? { port: String(opts.port) } : {}),
          ...(opts.sysctlsFrom !== undefined ? { sysctlsFrom: String(opts.sysctlsFrom) } : {}),
          ...(clientArgv ? { clientArgv } : {}),
          ...(opts.plan !== undefined ? { plan: String(opts.plan) } : {}),
          ...(opts.shard !== undefined ? { shard: String(opts.shard) } : {}),
          ...(opts.clientImage !== undefined ? { clientImage: String(opts.clientImage) } : {}),
          ...(opts.strike !== undefined ? { strike: String(opts.strike) } : {}),
          ...(opts.clientTimeout !== undefined ? { clientTimeout: String(opts.clientTimeout) } : {}),
          ...(opts.expectExit !== undefined ? { expectExit: String(opts.expectExit) } : {}),
          ...(opts.expectWithin !== undefined ? { expectWithin: String(opts.expectWithin) } : {}),
        },
        { log, session, write },
      );
      exitCode = r.exitCode;
    });

  program
    .command('list')
    .description('list the scenarios, their parameters and the sysctls that shape them')
    .addOption(new Option('--markdown', 'as the README table'))
    .option('--json', 'as JSON')
    .action(async (opts: { markdown?: boolean; json?: boolean }) => {
      const { listCommand } = await import('./commands/list.js');
      write(listCommand(opts));
    });

  program
    .command('doctor')
    .description('check what this machine needs and say how to install what is missing')
    .action(async () => {
      const { doctorChecks, formatDoctor } = await import('./commands/doctor.js');
      const checks = await doctorChecks();
      write(formatDoctor(checks));
      exitCode = checks.some((c) => c.required && !c.ok) ? 3 : 0;
    });

  program
    .command('images')
    .description('container images for container targets')
    .command('build')
    .description('build the harness images (probe, debian-base, nginx, redis) that are missing or stale')
    .argument('[image...]', 'keys or names (default: all); dependencies are built too')
    .option('--force', 'rebuild the named images even when up to date (no layer cache)')
    .option('--refresh-rootfs', 'debootstrap the Debian base again instead of reusing .cache/')
    .option('--verbose', 'show the output of docker and debootstrap')
    .option('--probe-binary <path>', 'static probe binary for harness/probe (default: make -C probe static)')
    .action(async (only: string[], opts: { force?: boolean; refreshRootfs?: boolean; verbose?: boolean; probeBinary?: string }) => {
      const { imagesBuildCommand } = await import('./commands/images.js');
      const r = await imagesBuildCommand(
        {
          only,
          force: Boolean(opts.force),
          refreshRootfs: Boolean(opts.refreshRootfs),
          verbose: Boolean(opts.verbose),
          ...(opts.probeBinary !== undefined ? { probeBinary: opts.probeBinary } : {}),
        },
        { write, log: (m) => process.stderr.write(`harness images: ${m}\n`) },
      );
      exitCode = r.exitCode;
    });

  program
    .command('gc')
    .description('remove everything a killed run left behind (namespaces, rules, processes, containers)')
    .action(async () => {
      const { gcCommand, formatGcReport } = await import('./commands/gc.js');
      const r = await gcCommand(log);
      write(formatGcReport(r));
      // A refused journal needs a person to look at it: not a clean result.
      exitCode = r.failed.length || r.journalsRefused.length ? 3 : 0;
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    process.stderr.write(`harness: ${formatError(err)}\n`);
    return err instanceof HarnessError ? err.exitCode : 3;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
