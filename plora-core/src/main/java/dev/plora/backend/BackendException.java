package dev.plora.backend;

/** A native call failed: out of device memory, a CUDA error, a kernel that was not compiled. */
public class BackendException extends RuntimeException {
  public BackendException(String message) {
    super(message);
  }

  public BackendException(String message, Throwable cause) {
    super(message, cause);
  }
}
