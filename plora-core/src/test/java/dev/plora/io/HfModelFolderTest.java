package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model folder's companion files, and folders written whole or not at all. */
class HfModelFolderTest {
  @TempDir Path dir;

  private static final String CONFIG = "{\"architectures\": [\"LlamaForCausalLM\"], \"rms_norm_eps\": 1e-05, "
      + "\"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"llama3\"}, \"torch_dtype\": \"float32\"}\n";

  /** A model folder as the Hub serves it: weights in three formats, companions, a link, a subfolder, a hidden file. */
  private Path hubFolder() throws IOException {
    Path model = Files.createDirectory(dir.resolve("model"));
    Files.writeString(model.resolve("config.json"), CONFIG);
    for (String name : List.of("generation_config.json", "tokenizer.json", "special_tokens_map.json",
        "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja", "README.md")) {
      Files.writeString(model.resolve(name), "contents of " + name);
    }
    Path blob = Files.writeString(Files.createDirectory(dir.resolve("blobs")).resolve("a1b2"), "{\"model_max\": 8}");
    Files.createSymbolicLink(model.resolve("tokenizer_config.json"), blob); // as in the Hugging Face cache
    for (String name : List.of("model.safetensors", "model-00001-of-00002.safetensors", HfCheckpoint.INDEX,
        "pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack", "model.gguf",
        "adapter_config.json", "training_args.bin", ".gitattributes")) {
      Files.writeString(model.resolve(name), "weights " + name);
    }
    Files.writeString(Files.createDirectory(model.resolve("original")).resolve("params.json"), "{}");
    return model;
  }

  private static final List<String> COMPANIONS = List.of("README.md", "chat_template.jinja", "config.json",
      "generation_config.json", "merges.txt", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
      "tokenizer_config.json", "vocab.json");

  @Test
  void companionFilesAreEverythingButWeightsHiddenFilesAndSubfolders() throws Exception {
    Path model = hubFolder(), out = dir.resolve("out");
    assertEquals(COMPANIONS, HfModelFolder.companionFiles(model));
    assertEquals(COMPANIONS, HfModelFolder.copyCompanionFiles(model, out, null));
    try (var files = Files.list(out)) {
      assertEquals(COMPANIONS, files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    for (String name : COMPANIONS) {
      assertArrayEquals(Files.readAllBytes(model.resolve(name)), Files.readAllBytes(out.resolve(name)), name);
    }
    assertFalse(Files.isSymbolicLink(out.resolve("tokenizer_config.json")), "a link is copied as the file it names");
    assertEquals(CONFIG, Files.readString(out.resolve("config.json")));
  }

  @Test
  void configJsonNamesTheWrittenDtype() throws Exception {
    Path model = hubFolder();
    HfModelFolder.copyCompanionFiles(model, dir.resolve("same"), Safetensors.Dtype.F32);
    assertEquals(CONFIG, Files.readString(dir.resolve("same/config.json")), "unchanged, byte for byte");

    HfModelFolder.copyCompanionFiles(model, dir.resolve("bf16"), Safetensors.Dtype.BF16);
    Map<String, Object> config = parse(dir.resolve("bf16/config.json"));
    assertEquals("bfloat16", config.remove("torch_dtype"));
    Map<String, Object> before = parse(model.resolve("config.json"));
    before.remove("torch_dtype");
    assertEquals(before, config, "every other field as it was, numbers exactly");

    Files.writeString(model.resolve("config.json"), "{\"dtype\": \"bfloat16\", \"vocab_size\": 7}");
    HfModelFolder.copyCompanionFiles(model, dir.resolve("f16"), Safetensors.Dtype.F16);
    assertEquals(Map.of("dtype", "float16", "vocab_size", new java.math.BigDecimal(7)),
        parse(dir.resolve("f16/config.json")), "newer transformers' field");

    Files.writeString(model.resolve("config.json"), "{\"vocab_size\": 7}");
    HfModelFolder.copyCompanionFiles(model, dir.resolve("none"), Safetensors.Dtype.F32);
    assertEquals("float32", parse(dir.resolve("none/config.json")).get("torch_dtype"), "added where absent");
  }

  @Test
  void aFolderAppearsWholeOrNotAtAll() throws Exception {
    Path target = dir.resolve("merged");
    IOException e = assertThrows(IOException.class, () -> HfModelFolder.write(target, false, tmp -> {
      Files.writeString(tmp.resolve("model-00001-of-00002.safetensors"), "half");
      throw new IOException("disk full");
    }));
    assertEquals("disk full", e.getMessage());
    assertEquals(List.of(), listing(dir), "neither the target nor the temporary folder");

    HfModelFolder.write(target, false, tmp -> Files.writeString(tmp.resolve("config.json"), "{}"));
    assertEquals(List.of("merged"), listing(dir));
    assertEquals(List.of("config.json"), listing(target));
    assertEquals("rwxr-xr-x", java.nio.file.attribute.PosixFilePermissions.toString(
        Files.getPosixFilePermissions(target)), "readable by all, as the files are");

    IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
        () -> HfModelFolder.write(target, false, tmp -> {}));
    assertTrue(refused.getMessage().contains("exists"), refused.getMessage());

    assertThrows(IOException.class, () -> HfModelFolder.write(target, true, tmp -> {
      Files.writeString(tmp.resolve("tokenizer.json"), "new");
      throw new IOException("failed");
    }));
    assertEquals(List.of("config.json"), listing(target), "a failed replacement leaves the old folder as it was");

    HfModelFolder.write(target, true, tmp -> Files.writeString(tmp.resolve("model.safetensors"), "new"));
    assertEquals(List.of("model.safetensors"), listing(target), "replaced, not added to");
    assertEquals(List.of("merged"), listing(dir), "the old folder is gone");
  }

  @Test
  void onlyAnEmptyFolderOrAModelFolderIsReplaced() throws Exception {
    Path home = Files.createDirectory(dir.resolve("home"));
    Files.writeString(home.resolve("notes.txt"), "keep me");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> HfModelFolder.write(home, true, tmp -> Files.writeString(tmp.resolve("config.json"), "{}")));
    assertTrue(e.getMessage().contains("not a model folder"), e.getMessage());
    assertEquals(List.of("notes.txt"), listing(home));
    Path file = Files.writeString(dir.resolve("file"), "x");
    e = assertThrows(IllegalArgumentException.class, () -> HfModelFolder.write(file, true, tmp -> {}));
    assertTrue(e.getMessage().contains("not a folder"), e.getMessage());
    Path empty = Files.createDirectory(dir.resolve("empty"));
    HfModelFolder.write(empty, true, tmp -> Files.writeString(tmp.resolve("config.json"), "{}"));
    assertEquals(List.of("config.json"), listing(empty));
  }

  /**
   * A killed write leaves its temporary folder, its lock released: the next write of the same
   * target removes it, and a folder renamed aside by a killed publish once the target is back.
   * A temporary folder still being written (locked) is left alone.
   */
  @Test
  void theNextWriteRemovesTheLeftoversOfKilledWritesOnly() throws Exception {
    Path target = dir.resolve("merged");
    Path killed = Files.createDirectory(dir.resolve(".merged.123456"));
    Files.writeString(killed.resolve(".plora-writing"), "");
    Files.writeString(killed.resolve("model.safetensors"), "half");
    Path other = Files.createDirectory(dir.resolve(".other.123456"));
    Files.writeString(other.resolve(".plora-writing"), "");
    try (AtomicFiles.TempFolder running = AtomicFiles.createTempFolder(target, false)) {
      assertFalse(Files.exists(killed), "the killed write's folder is removed");
      HfModelFolder.write(target, false, tmp -> Files.writeString(tmp.resolve("config.json"), "{}"));
      assertTrue(Files.isDirectory(running.path()), "a write still running keeps its folder");
    }
    Path aside = Files.createDirectory(dir.resolve(".merged.98765.old"));
    Files.writeString(aside.resolve("config.json"), "{}");
    HfModelFolder.write(target, true, tmp -> Files.writeString(tmp.resolve("config.json"), "{}"));
    assertEquals(List.of(".other.123456", "merged"), listing(dir), "another target's leftovers stay");
  }

  private static List<String> listing(Path folder) throws IOException {
    try (var files = Files.list(folder)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static Map<String, Object> parse(Path file) throws IOException {
    Map<String, Object> out = new TreeMap<>();
    ((Map<?, ?>) Json.parse(Files.readString(file))).forEach((k, v) -> out.put((String) k, v));
    return out;
  }
}
