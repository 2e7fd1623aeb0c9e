package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.io.Safetensors;
import dev.plora.io.Safetensors.Dtype;
import dev.plora.io.Safetensors.Spec;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InspectCommandTest {
  @TempDir Path dir;

  /** Every row's dtype, shape and bytes start (bytes: end) where the header's do, whatever the names' length. */
  @Test
  void f8TensorsAreListedAndLongNamesKeepTheColumnsAligned() throws Exception {
    String longName = "model.language_model.layers.31.mixture_of_experts.experts.127.gate_up_projection.weight_scale";
    List<Spec> specs = List.of(new Spec("a", Dtype.F32, new long[] {2}),
        new Spec(longName, Dtype.F8_E4M3, new long[] {3, 4}), new Spec("b", Dtype.F8_E5M2, new long[] {1, 2, 3}));
    Path file = dir.resolve("f8.safetensors");
    try (Safetensors.Writer w = Safetensors.create(file, specs, Map.of(), false)) {
      for (Spec s : specs) {
        w.write(ByteBuffer.allocate((int) s.bytes()));
      }
      w.commit();
    }
    StringWriter out = new StringWriter(), err = new StringWriter();
    assertEquals(0, Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "inspect", file.toString()),
        err.toString());
    List<String> lines = out.toString().lines().toList();
    String header = lines.get(0);
    for (int i = 0; i < specs.size(); i++) {
      Spec s = specs.get(i);
      String row = lines.get(i + 1);
      assertTrue(row.startsWith(s.name() + " "), row);
      assertEquals(header.indexOf("dtype"), row.indexOf(" " + s.dtype().name() + " ") + 1, "dtype column: " + row);
      String shape = java.util.Arrays.toString(s.shape());
      assertEquals(header.indexOf("shape"), row.indexOf(shape), "shape column: " + row);
      assertTrue(row.endsWith(" " + s.bytes()), row);
      assertEquals(header.length(), row.length(), "bytes right-aligned under the header: " + row);
    }
  }
}
