package dev.plora.cli;

import dev.plora.io.Safetensors;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code plora inspect FILE.safetensors}: the tensors and metadata of a file. */
@Command(name = "inspect", description = "List the tensors (name, dtype, shape, bytes) and metadata of a safetensors file.")
final class InspectCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(paramLabel = "FILE", description = "A .safetensors file.")
  Path file;

  @Override
  public Integer call() throws Exception {
    Options.inputFile("FILE", file);
    PrintWriter out = spec.commandLine().getOut();
    try (Safetensors.Reader r = Safetensors.open(file)) {
      long total = 0;
      // each column as wide as its longest entry (at least the usual widths), so rows stay aligned
      int nameWidth = 60, dtypeWidth = 5, shapeWidth = 20, bytesWidth = 14;
      for (Safetensors.Entry e : r.entries()) {
        nameWidth = Math.max(nameWidth, e.name().length());
        dtypeWidth = Math.max(dtypeWidth, e.dtype().name().length());
        shapeWidth = Math.max(shapeWidth, Arrays.toString(e.shape()).length());
        bytesWidth = Math.max(bytesWidth, Long.toString(e.bytes()).length());
      }
      String row = "%-" + nameWidth + "s %-" + dtypeWidth + "s %-" + shapeWidth + "s %" + bytesWidth + "s%n";
      out.printf(Locale.ROOT, row, "name", "dtype", "shape", "bytes");
      for (Safetensors.Entry e : r.entries()) {
        out.printf(Locale.ROOT, row, e.name(), e.dtype(), Arrays.toString(e.shape()), e.bytes());
        total += e.bytes();
      }
      out.printf(Locale.ROOT, "%d tensors, %d bytes of data%n", r.entries().size(), total);
      for (Map.Entry<String, String> m : r.metadata().entrySet()) {
        out.printf(Locale.ROOT, "metadata %s = %s%n", m.getKey(), m.getValue());
      }
    }
    out.flush();
    return 0;
  }
}
