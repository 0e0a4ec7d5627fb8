//! Chat templates rendered with minijinja the way transformers renders them
//! with Jinja2: `trim_blocks` and `lstrip_blocks` on, Python-compatible
//! string methods, `raise_exception`, `tojson`, and optional tool
//! definitions (Qwen's and Llama 3's templates render a tools block).

use minijinja::{context, Environment, Error as JinjaError, ErrorKind};

use crate::error::{Error, Result};
use crate::weights::ChatTemplate;

/// One chat message.
#[derive(Debug, Clone)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// Renders `messages` with the model's template, ending with the assistant's turn.
pub fn render(template: &ChatTemplate, messages: &[Message]) -> Result<String> {
    render_with_tools(template, messages, None)
}

/// [`render`] with tool definitions (the JSON list transformers'
/// `apply_chat_template(tools=...)` takes), for templates that describe tools.
pub fn render_with_tools(
    template: &ChatTemplate,
    messages: &[Message],
    tools: Option<&serde_json::Value>,
) -> Result<String> {
    let source = template
        .source
        .as_deref()
        .ok_or_else(|| Error::format(&template.origin, "this model has no chat template"))?;
    let mut env = Environment::new();
    // transformers' Jinja2 environment.
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_template("chat", source).map_err(|e| {
        Error::format(
            &template.origin,
            format!("the chat template does not parse: {e}"),
        )
    })?;
    let tmpl = env.get_template("chat").expect("template was just added");
    tmpl.render(context! {
        messages => messages.iter()
            .map(|m| context! { role => m.role.clone(), content => m.content.clone() })
            .collect::<Vec<_>>(),
        add_generation_prompt => true,
        tools => tools.map(|t| minijinja::Value::from(minijinja::value::Serde(t))),
        bos_token => template.bos_token.clone().unwrap_or_default(),
        eos_token => template.eos_token.clone().unwrap_or_default(),
    })
    .map_err(|e| {
        Error::format(
            &template.origin,
            format!("the chat template failed to render: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn chatml_renders_with_default_system_prompt() {
        let t = ChatTemplate {
            source: Some(CHATML.into()),
            ..Default::default()
        };
        let out = render(&t, &[msg("user", "Hi")]).unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are a helpful"));
        assert!(out.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn python_string_methods_and_errors() {
        let t = ChatTemplate {
            source: Some("{{ messages[0]['content'].strip().upper() }}{% if messages|length > 1 %}{{ raise_exception('one only') }}{% endif %}".into()),
            ..Default::default()
        };
        assert_eq!(render(&t, &[msg("user", "  hi ")]).unwrap(), "HI");
        let err = render(&t, &[msg("user", "a"), msg("user", "b")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("one only"), "{err}");
        let none = ChatTemplate::default();
        assert!(render(&none, &[msg("user", "a")])
            .unwrap_err()
            .to_string()
            .contains("no chat template"));
    }
}
