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
    subcommands = {InfoCommand.class, DemoCommand.class, BenchCommand.class, InspectCommand.class, MergeCommand.class,
        CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
  }

  /** Runs the command line with the given output streams and returns the exit code. */
  public static int run(PrintWriter out, PrintWriter err, String... args) {
    CommandLine cli = new CommandLine(new Main()).setOut(out).setErr(err);
    cli.setExitCodeExceptionMapper(e -> isBadInput(e) ? 2 : 1);
    cli.setExecutionExceptionHandler((e, line, parsed) -> {
      String message = e instanceof java.nio.file.NoSuchFileException ? "no such file: " + e.getMessage()
          : e.getMessage() != null ? e.getMessage() : e.toString();
      line.getErr().println("plora: " + message);
      if (!isBadInput(e)) {
        e.printStackTrace(line.getErr());
      }
      return line.getExitCodeExceptionMapper().getExitCode(e);
    });
    return cli.execute(args);
  }

  /** Bad input is the user's to fix (exit 2, one line); anything else is ours (exit 1, with a trace). */
  static boolean isBadInput(Throwable e) {
    return e instanceof IllegalArgumentException || e instanceof CommandLine.ParameterException
        || e instanceof java.nio.file.NoSuchFileException || e instanceof java.nio.file.AccessDeniedException;
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
