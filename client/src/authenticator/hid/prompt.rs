//! Talking to the person at the keyboard: the touch prompt, the PIN, and choosing a key.
//! Everything is written to stderr so stdout stays clean for the CLI's own output.

use std::io::{BufRead, Write};

use crate::authenticator::AuthenticatorError;

/// Environment variable that supplies the PIN to scripts instead of the terminal prompt.
pub(super) const PIN_ENV: &str = "TAPGATE_PIN";

pub(super) fn touch() {
    eprintln!("Touch your security key now (it is waiting for your tap)...");
}

/// The PIN from `TAPGATE_PIN`, or read from the terminal without echo.
pub(super) fn pin(retries: Option<i32>) -> Result<String, AuthenticatorError> {
    if let Ok(pin) = std::env::var(PIN_ENV)
        && !pin.is_empty()
    {
        return Ok(pin);
    }
    let hint = match retries {
        Some(n) if n <= 3 => format!(" ({n} attempts left before the PIN is blocked)"),
        _ => String::new(),
    };
    let pin = rpassword::prompt_password(format!("Security key PIN{hint}: ")).map_err(|e| {
        AuthenticatorError::Other(format!(
            "cannot read the security key PIN from the terminal ({e}); set {PIN_ENV} instead"
        ))
    })?;
    if pin.is_empty() {
        return Err(AuthenticatorError::Other("no PIN entered".into()));
    }
    Ok(pin)
}

/// Asks which of `labels` to use, reading a number from stdin. Returns its index.
pub(super) fn choose_key(labels: &[String]) -> Result<usize, AuthenticatorError> {
    let stdin = std::io::stdin();
    choose_key_from(labels, &mut stdin.lock())
}

fn choose_key_from(labels: &[String], input: &mut dyn BufRead) -> Result<usize, AuthenticatorError> {
    eprintln!("Several security keys are connected:");
    for (i, label) in labels.iter().enumerate() {
        eprintln!("  {}) {label}", i + 1);
    }
    for _ in 0..3 {
        eprint!("Which key should be enrolled? [1-{}]: ", labels.len());
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let read = input
            .read_line(&mut line)
            .map_err(|e| AuthenticatorError::Other(format!("cannot read the key choice: {e}")))?;
        if read == 0 {
            break;
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=labels.len()).contains(&n) => return Ok(n - 1),
            _ => eprintln!("Please enter a number between 1 and {}.", labels.len()),
        }
    }
    Err(AuthenticatorError::Other(
        "no security key chosen: answer with the key's number, or connect only the key to enroll".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_choice_after_bad_input() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let mut input: &[u8] = b"x\n7\n2\n";
        assert_eq!(choose_key_from(&labels, &mut input), Ok(1));
    }

    #[test]
    fn gives_up_at_end_of_input() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let mut input: &[u8] = b"";
        assert!(choose_key_from(&labels, &mut input).is_err());
    }
}
