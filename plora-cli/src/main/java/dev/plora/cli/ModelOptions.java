package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.finetune.FineTuneSettings;
import dev.plora.generate.GenerationConfig;
import dev.plora.io.PeftAdapter;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.text.HfTokenizer;
import dev.plora.text.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import picocli.CommandLine.Option;

/** The model folder and where it runs: shared by finetune, eval and generate. */
final class ModelOptions {
  @Option(names = "--model", required = true, paramLabel = "DIR",
      description = "Hugging Face model folder (config.json, safetensors weights, tokenizer.json).")
  Path model;

  @Option(names = "--dtype", description = "f32, bf16 or f16 compute (default f32 on cpu, bf16 on cuda).")
  String dtype;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backend;

  private LlamaConfig config;

  /** config.json, read and checked once (an unsupported architecture fails here, before any work). */
  LlamaConfig config() throws IOException {
    if (config == null) {
      if (!Files.isDirectory(model)) {
        throw new IllegalArgumentException("--model: " + model + " is not a folder (expected a Hugging Face model "
            + "folder)");
      }
      config = LlamaConfig.read(model);
    }
    return config;
  }

  /** The compute dtype asked for, or null for the backend's default. */
  DType dtype() {
    return dtype == null ? null : Options.dtype("--dtype", dtype, true);
  }

  /** The backend's name (checked: CUDA where it is unusable is refused), or null for the default. */
  String backendName() {
    return Options.backendName(backend);
  }

  Backend backend() {
    return Options.backend(backend);
  }

  /** The model folder's tokenizer, whose ids must fit the model's vocabulary. */
  Tokenizer tokenizer() throws IOException {
    Tokenizer t = HfTokenizer.load(model);
    if (t.vocabSize() > config().vocabSize()) {
      t.close();
      throw new IllegalArgumentException("--model: " + model + ": tokenizer.json has " + t.vocabSize()
          + " tokens but config.json's vocab_size is " + config().vocabSize());
    }
    return t;
  }

  /** The model on {@code b} in the compute dtype, with the PEFT adapter at {@code adapter} applied (if any). */
  LlamaForCausalLM load(Backend b, Path adapter) throws IOException {
    DType compute = dtype() != null ? dtype() : FineTuneSettings.defaultDtype(b);
    LlamaForCausalLM m = LlamaForCausalLM.load(b, model, compute, false);
    try {
      if (adapter != null) {
        PeftAdapter.apply(m, adapter);
      }
      return m;
    } catch (IOException | RuntimeException e) {
      m.close();
      throw e;
    }
  }

  /** The tokens that end generation: generation_config.json's and config.json's eos_token_id, and the tokenizer's EOS. */
  Set<Integer> stopTokenIds(Tokenizer tokenizer) throws IOException {
    Set<Integer> stops = new LinkedHashSet<>(GenerationConfig.eosTokenIds(model));
    tokenizer.eosId().ifPresent(stops::add);
    return stops;
  }
}
