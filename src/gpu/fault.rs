//! A device's health as the driver reports it, gathered where wgpu reports it: the
//! uncaptured-error handler (validation, out of memory, internal errors, a submit to a lost
//! device), the device-lost callback, and the one place wgpu panics on a fault instead of
//! returning it: `Device::poll` turns a lost device during a wait into a panic
//! (`handle_error_fatal` in wgpu 30's `backend/wgpu_core.rs`). Each becomes a `SweepError`
//! that the scheduler's watchdog acts on; none takes the process down.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Once};

use crate::device::{Fault, SweepError};

/// The first fault a device's callbacks saw, shared with them.
#[derive(Clone, Default)]
pub(crate) struct Health {
    first: Arc<Mutex<Option<(Fault, String)>>>,
}

impl Health {
    /// Installs the device's error and loss callbacks. wgpu's default handler for uncaptured
    /// errors panics; this one records them for the next call to `check`.
    pub(crate) fn watch(device: &wgpu::Device) -> Health {
        let health = Health::default();
        let errors = health.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            let fault = match error {
                wgpu::Error::OutOfMemory { .. } | wgpu::Error::Validation { .. } | wgpu::Error::Internal { .. } => {
                    Fault::Driver
                }
            };
            errors.record(fault, error.to_string());
        }));
        let lost = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            let message = if message.is_empty() { String::new() } else { format!(": {message}") };
            lost.record(Fault::Lost, format!("device lost ({reason:?}){message}"));
        });
        health
    }

    fn record(&self, fault: Fault, message: String) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        // A lost device explains the errors that follow it, and outranks those before.
        if first.is_none() || (fault == Fault::Lost && first.as_ref().is_some_and(|(f, _)| *f != Fault::Lost)) {
            *first = Some((fault, message));
        }
    }

    /// The fault seen so far, as the error of device `name`.
    pub(crate) fn check(&self, name: &str) -> Result<(), SweepError> {
        match self.first.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            None => Ok(()),
            Some((fault, message)) => Err(SweepError { device: name.to_string(), message, fault }),
        }
    }
}

thread_local! {
    /// Set while this thread runs a driver call whose panic `catch_driver_panic` turns into an
    /// error: the panic hook then logs it at debug level instead of printing a backtrace notice.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// A panic inside a driver call, by its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DriverPanic(pub(crate) String);

/// Runs `call`, turning a panic inside it (wgpu's way of reporting a device lost during a
/// wait) into the panic's message.
pub(crate) fn catch_driver_panic<T>(call: impl FnOnce() -> T) -> Result<T, DriverPanic> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                tracing::debug!("driver call panicked: {info}");
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    CATCHING.with(|c| c.set(false));
    result.map_err(|panic| {
        let message =
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        DriverPanic(message.unwrap_or_else(|| "the driver call panicked".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_thread_goes_on() {
        let caught = catch_driver_panic(|| -> u32 { panic!("Error in Device::poll: Parent device is lost") });
        assert_eq!(caught, Err(DriverPanic("Error in Device::poll: Parent device is lost".into())));
        assert_eq!(catch_driver_panic(|| 7), Ok(7));
    }

    #[test]
    fn a_loss_outranks_the_errors_around_it() {
        let health = Health::default();
        assert!(health.check("gpu").is_ok());
        health.record(Fault::Driver, "Validation Error: buffer is invalid".into());
        health.record(Fault::Lost, "device lost (Destroyed): ".into());
        health.record(Fault::Driver, "another".into());
        let error = health.check("gpu").unwrap_err();
        assert_eq!((error.fault, error.message.as_str()), (Fault::Lost, "device lost (Destroyed): "));
    }
}
