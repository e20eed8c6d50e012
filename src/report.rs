//! Where warden's own diagnostics go: through `log`, or to stderr when no logger takes them.
//!
//! warden promises that nothing is lost: an unobserved failure reaches the error hook, and
//! the default hook reports it. Reporting only through `log` would break that promise in
//! every program that never installed a logger (most small programs, every test binary),
//! where `log`'s records go nowhere. So a report goes to stderr when no logger is
//! installed, and through `log` otherwise.
//!
//! "No logger installed" is read from `log::max_level()`: it is `Off` until a logger
//! raises it, and every logger crate raises it when installed. A program whose logger
//! filters warden's records out (by level or target) made that choice and gets nothing on
//! stderr; a program that wants silence with no logger installs its own error hook.

use std::fmt;
use std::io::Write;

use log::Level;

/// Reports `args` at `level`: as a `log` record with target `warden` when a logger is
/// installed, otherwise as one line on stderr (`warden: ERROR: ...`).
pub(crate) fn emit(level: Level, args: fmt::Arguments<'_>) {
    if log::max_level() == log::LevelFilter::Off {
        // A closed stderr is nothing to panic over: this may run inside a destructor.
        let _ = writeln!(
            std::io::stderr().lock(),
            "warden: {}: {args}",
            level.as_str()
        );
    } else {
        log::log!(target: "warden", level, "{args}");
    }
}

/// [`emit`] at `Error` level, with `format!`-style arguments.
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::report::emit(::log::Level::Error, ::std::format_args!($($arg)+))
    };
}

/// [`emit`] at `Warn` level, with `format!`-style arguments.
macro_rules! warning {
    ($($arg:tt)+) => {
        $crate::report::emit(::log::Level::Warn, ::std::format_args!($($arg)+))
    };
}

/// [`emit`] at `Info` level, with `format!`-style arguments.
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::report::emit(::log::Level::Info, ::std::format_args!($($arg)+))
    };
}

pub(crate) use {error, info, warning};
