package dev.plora.finetune;

import dev.plora.io.AtomicFiles;
import dev.plora.io.HfCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** The files of a model folder that are not its weights: config, generation config, tokenizer. */
final class ModelFolderFiles {
  private static final List<String> WEIGHT_SUFFIXES = List.of(".safetensors", ".bin", ".pt", ".pth", ".gguf",
      ".ckpt", ".h5", ".msgpack");

  private ModelFolderFiles() {}

  /** Copies every regular file of {@code from} that holds no weights into {@code to}, each atomically. */
  static void copyCompanions(Path from, Path to) throws IOException {
    try (var files = Files.list(from)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        String name = f.getFileName().toString();
        String lower = name.toLowerCase(Locale.ROOT);
        if (!Files.isRegularFile(f) || name.equals(HfCheckpoint.INDEX) || name.startsWith(".")
            || WEIGHT_SUFFIXES.stream().anyMatch(lower::endsWith) || lower.endsWith(".index.json")) {
          continue;
        }
        AtomicFiles.write(to.resolve(name), Files.readAllBytes(f), true);
      }
    }
  }
}
