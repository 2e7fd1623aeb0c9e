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
}
