package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class MainTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  @Test
  void helpListsCommands() {
    assertEquals(0, run("--help"));
    String text = out.toString();
    assertTrue(text.contains("info") && text.contains("demo"), text);
  }

  @Test
  void infoReportsBackendsAndLibraries() {
    assertEquals(0, run("info"));
    String text = out.toString();
    assertTrue(text.contains("backends available: cpu"), text);
    assertTrue(text.contains("libjniCpuKernels.so"), text);
    assertTrue(text.matches("(?s).*BLAS threads [1-9].*"), text);
    assertTrue(text.matches("(?s).*cuda: (usable|unusable): .+.*"), text);
  }

  @Test
  void demoSaysItIsNotAvailableAndFails() {
    assertNotEquals(0, run("demo"));
    assertTrue(err.toString().contains("not available"), err.toString());
  }

  @Test
  void unknownCommandIsBadInput() {
    assertEquals(2, run("frobnicate"));
  }
}
