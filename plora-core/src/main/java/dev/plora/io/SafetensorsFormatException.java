package dev.plora.io;

/** A file that does not follow the safetensors format; the message says what is wrong and where. */
public final class SafetensorsFormatException extends IllegalArgumentException {
  public SafetensorsFormatException(String message) {
    super(message);
  }
}
