package dev.plora.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code plora} command. Exit codes: 0 ok, 2 bad input or environment (a bad argument, an
 * unreadable or unwritable path, a full disk, CUDA unusable), 1 internal error (a bug). Every
 * error is one line on stderr.
 */
@Command(
    name = "plora",
    versionProvider = VersionProvider.class,
    description = "LoRA and PeriodicLoRA fine-tuning with native CPU and CUDA kernels.",
    subcommands = {InfoCommand.class, DemoCommand.class, FinetuneCommand.class, EvalCommand.class, GenerateCommand.class,
        BenchCommand.class, InspectCommand.class, MergeCommand.class,
        CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  /** Set with PLORA_TRACE=1: internal errors also print their stack trace. */
  static final String TRACE = "PLORA_TRACE";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
  boolean help;

  @Option(names = {"-V", "--version"}, versionHelp = true, description = "Print the version and exit.")
  boolean version;

  public static void main(String[] args) {
    System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
  }

  /** Runs the command line with the given output streams and returns the exit code. */
  public static int run(PrintWriter out, PrintWriter err, String... args) {
    CommandLine cli = new CommandLine(new Main()).setOut(out).setErr(err);
    for (CommandLine command : cli.getSubcommands().values()) {
      if (!(command.getCommand() instanceof CommandLine.HelpCommand)) { // which has its own
        command.getCommandSpec().addOption(CommandLine.Model.OptionSpec.builder("-h", "--help").usageHelp(true)
            .description("Show this help and exit.").build());
      }
    }
    cli.setParameterExceptionHandler((e, given) -> report(err, e));
    cli.setExecutionExceptionHandler((e, line, parsed) -> report(err, e));
    try {
      return cli.execute(args);
    } catch (RuntimeException | Error e) { // whatever the handlers did not see (an Error, say)
      return report(err, e);
    }
  }

  /** Prints {@code e} as one line and returns its exit code: 2 for bad input, 1 for an internal error. */
  static int report(PrintWriter err, Throwable e) {
    Throwable cause = unwrap(e);
    boolean badInput = isBadInput(cause);
    String message = badInput ? message(cause) : "internal error: " + cause
        + " (a bug; please report it with the command line, " + TRACE + "=1 adds the stack trace)";
    if (cause instanceof CommandLine.ParameterException p) {
      message += " (see " + p.getCommandLine().getCommandSpec().qualifiedName() + " --help)";
    }
    err.println("plora: " + message.strip().replaceAll("\\s*\\R\\s*", " "));
    if (!badInput && "1".equals(System.getenv(TRACE))) {
      e.printStackTrace(err);
    }
    err.flush();
    return badInput ? 2 : 1;
  }

  /**
   * Bad input is the user's or the machine's to fix: an argument, a file, a disk, a missing
   * GPU. Anything else is ours.
   */
  static boolean isBadInput(Throwable e) {
    return e instanceof IllegalArgumentException || e instanceof CommandLine.ParameterException
        || e instanceof IOException;
  }

  private static Throwable unwrap(Throwable e) {
    while ((e instanceof CommandLine.ExecutionException || e instanceof UncheckedIOException) && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }

  private static String message(Throwable e) {
    if (e instanceof NoSuchFileException f) {
      return "no such file: " + f.getFile();
    }
    if (e instanceof AccessDeniedException f) {
      return "permission denied: " + f.getFile();
    }
    return e.getMessage() != null && !e.getMessage().isBlank() ? e.getMessage() : e.toString();
  }

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
