package dev.plora.text;

import java.util.List;

/** A model's chat template: a conversation to the one string the model was trained on. */
public interface ChatTemplate {

  /**
   * Renders messages as Hugging Face's {@code apply_chat_template(tokenize=False)} does; with
   * {@code addGenerationPrompt} the text ends where the assistant's next reply begins.
   */
  String render(List<ChatMessage> messages, boolean addGenerationPrompt);
}
