package dev.plora.cli;

import dev.plora.Version;
import dev.plora.backend.Backends;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.backend.cuda.CudaSupport;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code plora info}: version, backends, where native code was loaded from. */
@Command(name = "info", description = "Show the version, the usable backends and the native libraries.")
final class InfoCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    String requested = Backends.requested(); // refuses an unknown name before anything is printed
    PrintWriter out = spec.commandLine().getOut();
    out.println("plora " + Version.get());
    out.println("java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")");
    out.println("backends available: " + String.join(", ", Backends.available()));
    out.println("backend selected: " + (requested != null ? requested + " (from " + Backends.setting() + ")"
        : (CudaSupport.isUsable() ? "cuda" : "cpu") + " (default)"));
    try (CpuBackend cpu = new CpuBackend()) {
      out.println(cpu.describe());
      out.println("cpu bf16 gemm: " + cpu.describeBf16Gemm());
    }
    out.println("cpu libraries: " + CpuBackend.librariesLoadedFrom());
    out.println("cuda: " + (CudaSupport.isUsable() ? "usable: " : "unusable: ") + CudaSupport.reason());
    if (CudaSupport.isUsable()) {
      out.println("cuda libraries: " + CudaSupport.librariesLoadedFrom());
    }
    out.flush();
    return 0;
  }
}
