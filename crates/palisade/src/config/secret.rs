//! A configuration value that must never be printed: its `Debug` says only that it
//! is set, so a `{:?}` of the configuration (a panic message, a debug log) cannot leak
//! it. The value is reached with [`Secret::expose`], by name, where it is used.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
        assert_eq!(s.expose(), "hunter2-hunter2");
    }
}
