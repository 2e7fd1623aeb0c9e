package dev.plora.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code plora} command. Exit codes: 0 ok, 1 internal error, 2 bad input. */
@Command(
    name = "plora",
    mixinStandardHelpOptions = true,
    versionProvider = VersionProvider.class,
    description = "LoRA and PeriodicLoRA fine-tuning with native CPU and CUDA kernels.",
    subcommands = {InfoCommand.class, DemoCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
  }

  /** Runs the command line with the given output streams and returns the exit code. */
  public static int run(PrintWriter out, PrintWriter err, String... args) {
    CommandLine cli = new CommandLine(new Main()).setOut(out).setErr(err);
    cli.setExitCodeExceptionMapper(
        e -> e instanceof IllegalArgumentException || e instanceof CommandLine.ParameterException ? 2 : 1);
    cli.setExecutionExceptionHandler((e, line, parsed) -> {
      line.getErr().println("plora: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
      if (!(e instanceof IllegalArgumentException)) {
        e.printStackTrace(line.getErr());
      }
      return line.getExitCodeExceptionMapper().getExitCode(e);
    });
    return cli.execute(args);
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
