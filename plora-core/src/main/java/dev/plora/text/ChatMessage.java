package dev.plora.text;

/** One turn of a conversation: a role ("system", "user", "assistant", ...) and its text. */
public record ChatMessage(String role, String content) {
  public ChatMessage {
    if (role == null || role.isEmpty()) {
      throw new IllegalArgumentException("role: expected a non-empty role, got " + (role == null ? "null" : "\"\""));
    }
    if (content == null) {
      throw new IllegalArgumentException("content: expected text for a " + role + " message, got null");
    }
  }
}
