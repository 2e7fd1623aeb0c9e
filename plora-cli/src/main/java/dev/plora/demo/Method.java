package dev.plora.demo;

/** The training methods the demo compares, by their report names. */
public enum Method {
  FULL("full"),
  LORA("lora"),
  PLORA_FULL("plora_full"),
  PLORA_MOMENTUM("plora_momentum"),
  RELORA("relora");

  private final String reportName;

  Method(String reportName) {
    this.reportName = reportName;
  }

  public String reportName() {
    return reportName;
  }

  public boolean usesAdapters() {
    return this != FULL;
  }

  /** The method {@code plora finetune} runs for this one (both PLoRA variants are PLoRA; m tells them apart). */
  public dev.plora.finetune.Method fineTuneMethod() {
    return switch (this) {
      case FULL -> dev.plora.finetune.Method.FULL;
      case LORA -> dev.plora.finetune.Method.LORA;
      case PLORA_FULL, PLORA_MOMENTUM -> dev.plora.finetune.Method.PLORA;
      case RELORA -> dev.plora.finetune.Method.RELORA;
    };
  }
}
