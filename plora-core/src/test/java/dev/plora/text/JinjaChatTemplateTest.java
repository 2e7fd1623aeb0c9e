package dev.plora.text;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * The chat templates of real model families (resources text/templates/, as their
 * tokenizer_config.json holds them) against the text Hugging Face's apply_chat_template renders:
 * jinja2 with trim_blocks and lstrip_blocks.
 */
class JinjaChatTemplateTest {
  static final List<ChatMessage> CHAT = List.of(
      new ChatMessage("system", "You are brief."),
      new ChatMessage("user", "Hi"),
      new ChatMessage("assistant", "Hello!"),
      new ChatMessage("user", "  What is 2+2? "));

  static JinjaChatTemplate template(String family, String bos, String eos) throws IOException {
    try (InputStream in = JinjaChatTemplateTest.class.getResourceAsStream("/text/templates/" + family + ".jinja")) {
      return new JinjaChatTemplate(new String(in.readAllBytes(), StandardCharsets.UTF_8), bos, eos);
    }
  }

  /** Zephyr style; its template is all newlines between tags, which trim_blocks removes. */
  @Test
  void tinyLlama() throws IOException {
    JinjaChatTemplate t = template("tinyllama", "<s>", "</s>");
    String turns = "<|system|>\nYou are brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
        + "<|user|>\n  What is 2+2? </s>\n";
    assertEquals(turns, t.render(CHAT, false));
    assertEquals(turns + "<|assistant|>\n", t.render(CHAT, true));
  }

  /** Llama 3: BOS by the template, contents trimmed by a filter that binds before "+". */
  @Test
  void llama3() throws IOException {
    JinjaChatTemplate t = template("llama3", "<|begin_of_text|>", "<|eot_id|>");
    String turns = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are brief.<|eot_id|>"
        + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        + "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>";
    assertEquals(turns, t.render(CHAT, false));
    assertEquals(turns + "<|start_header_id|>assistant<|end_header_id|>\n\n", t.render(CHAT, true));
  }

  /** Llama 3.2: {@code strftime_now is defined}, then today's date in Python's strftime. */
  @Test
  void llama32StampsToday() throws IOException {
    JinjaChatTemplate t = template("llama3.2", "<|begin_of_text|>", "<|eot_id|>");
    List<ChatMessage> chat = List.of(new ChatMessage("system", " Be brief. "), new ChatMessage("user", "Hi"));
    String before = today();
    String rendered = t.render(chat, true);
    String date = rendered.equals(expectedLlama32(today())) ? today() : before; // a render across midnight
    assertEquals(expectedLlama32(date), rendered);
  }

  private static String today() {
    return LocalDate.now().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ROOT));
  }

  private static String expectedLlama32(String date) {
    return "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        + "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n"
        + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        + "<|start_header_id|>assistant<|end_header_id|>\n\n";
  }

  /** Mistral: the system message joins the last user turn; no generation prompt of its own. */
  @Test
  void mistral() throws IOException {
    JinjaChatTemplate t = template("mistral", "<s>", "</s>");
    String text = "<s>[INST] Hi[/INST] Hello!</s>[INST] You are brief.\n\n  What is 2+2? [/INST]";
    assertEquals(text, t.render(CHAT, false));
    assertEquals(text, t.render(CHAT, true));
  }

  @Test
  void raiseExceptionEndsTheRenderingWithTheTemplatesMessage() throws IOException {
    JinjaChatTemplate t = template("mistral", "<s>", "</s>");
    assertRefused(IllegalArgumentException.class,
        () -> t.render(List.of(new ChatMessage("user", "A"), new ChatMessage("user", "B")), true),
        "chat template: After the optional system message, conversation roles must alternate user/assistant/user/assistant/...");
    assertRefused(IllegalArgumentException.class,
        () -> t.render(List.of(new ChatMessage("user", "A"), new ChatMessage("tool", "B")), false),
        "Only user and assistant roles are supported");
  }

  /** Qwen2.5 (ChatML): a default system message when the chat has none. */
  @Test
  void qwen25() throws IOException {
    JinjaChatTemplate t = template("qwen2.5", null, "<|im_end|>");
    String turns = "<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n  What is 2+2? <|im_end|>\n";
    assertEquals(turns, t.render(CHAT, false));
    assertEquals(turns + "<|im_start|>assistant\n", t.render(CHAT, true));
    assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        + "<|im_start|>user\nHi<|im_end|>\n", t.render(List.of(new ChatMessage("user", "Hi")), false));
  }

  /**
   * Qwen3: namespace() with an expression argument, messages[::-1], and Python's split, strip,
   * lstrip, rstrip, startswith and endswith: reasoning is dropped from turns before the last
   * query and kept, re-spaced, after it.
   */
  @Test
  void qwen3() throws IOException {
    JinjaChatTemplate t = template("qwen3", null, "<|im_end|>");
    List<ChatMessage> chat = List.of(
        new ChatMessage("user", "Hi"),
        new ChatMessage("assistant", "<think>\nLet me see.\n</think>\n\nHello!"),
        new ChatMessage("user", "Why?"),
        new ChatMessage("assistant", "<think>Because.</think>So."));
    String turns = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        + "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n<think>\nBecause.\n</think>\n\nSo.<|im_end|>\n";
    assertEquals(turns, t.render(chat, false));
    assertEquals(turns + "<|im_start|>assistant\n", t.render(chat, true));
  }

  @Test
  void jinja2WhitespaceRules() {
    // trim_blocks eats the newline after a block tag, lstrip_blocks the indent before one
    JinjaChatTemplate blocks = new JinjaChatTemplate("{% for m in messages %}\n    {% if loop.first %}\n[{{ m.role }}]\n"
        + "    {% endif %}\n{{ m.content }}|\n{% endfor %}\n", null, null);
    assertEquals("[user]\na|\nb|\n", blocks.render(List.of(new ChatMessage("user", "a"), new ChatMessage("assistant", "b")), false));
    // one trailing newline of the source is dropped, a rendered one is kept
    JinjaChatTemplate tail = new JinjaChatTemplate("{{ 'x\\n' }}\n", null, null);
    assertEquals("x\n", tail.render(List.of(), false));
    assertEquals("x", new JinjaChatTemplate("x\r\n", null, null).render(List.of(), false));
    // an undefined token is empty, as in jinja2
    assertEquals("[]", new JinjaChatTemplate("[{{ bos_token }}]", null, null).render(List.of(), false));
  }

  @Test
  void pythonStringMethods() {
    String src = "{{ s.strip() }}|{{ s.strip(' x') }}|{{ s.lstrip(' x') }}|{{ s.rstrip() }}|"
        + "{{ s.split('a.b') | length }}|{{ s.split()[1] }}|{{ s.split('x', 1)[1] }}|"
        + "{{ 'T' if s.strip().startswith('xa') else 'F' }}|{{ 'T' if s.endswith((' ', 'q')) else 'F' }}|{{ s.upper() }}|{{ s.replace('x', '') }}|"
        + "{{ '-'.join(s.split()) }}";
    String s = " xa.b|a.b cx ";
    String out = new JinjaChatTemplate("{% set s = messages[0].content %}" + src, null, null)
        .render(List.of(new ChatMessage("user", s)), false);
    // jinja2's output for the same template (the separators "|" mix with those in s)
    assertEquals("xa.b|a.b cx|a.b|a.b c|a.b|a.b cx | xa.b|a.b cx|3|cx|a.b|a.b cx |T|T| XA.B|A.B CX |"
        + " a.b|a.b c |xa.b|a.b-cx", out);
  }

  @Test
  void namedArgumentsTakeWholeExpressions() {
    assertEquals("{% set ns = namespace(a=(n - 1), b=(f(x, y=(2 + 3))), c=(m|length - 1)) %}{{ x == 1 }}{{ 'a=b' }}",
        JinjaChatTemplate.parenthesizeNamedArguments(
            "{% set ns = namespace(a=n - 1, b=f(x, y=2 + 3), c=m|length - 1) %}{{ x == 1 }}{{ 'a=b' }}"));
    JinjaChatTemplate t = new JinjaChatTemplate("{% set ns = namespace(last=messages|length - 1, hit=false) %}"
        + "{% for m in messages[::-1] %}{% if m.role == 'user' and not ns.hit %}{% set ns.hit = true %}"
        + "{% set ns.last = messages|length - 1 - loop.index0 %}{% endif %}{% endfor %}{{ ns.last }}", null, null);
    assertEquals("1", t.render(List.of(new ChatMessage("user", "a"), new ChatMessage("user", "b"),
        new ChatMessage("assistant", "c")), false));
  }

  @Test
  void templateErrorsNameTheirLine() {
    JinjaChatTemplate t = new JinjaChatTemplate("ok\n{{ messages[0].content.nosuchmethod() }}", null, null);
    assertRefused(IllegalArgumentException.class, () -> t.render(List.of(new ChatMessage("user", "a")), false),
        "chat template", "line 2", "nosuchmethod");
  }
}
