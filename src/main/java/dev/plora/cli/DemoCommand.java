package dev.plora.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code plora demo}: the main job. Not built yet, so it says so and fails. */
@Command(name = "demo", description = "PLoRA vs LoRA on a generated adaptation task (not available yet).")
final class DemoCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    spec.commandLine().getErr().println("plora demo: not available yet. The demo needs the LoRA layer and the PLoRA "
        + "trainer, which are not built; `plora info` shows what this build has.");
    return 1;
  }
}
