//! The binary fixtures, base64-encoded: a 1×1 red PNG and a short WAV of
//! silence (8 kHz, 8-bit mono, eight samples).

/// A 1×1 red pixel, PNG.
pub(crate) const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// The MIME type of [`RED_PIXEL_PNG`].
pub(crate) const PNG: &str = "image/png";

/// One millisecond of silence, WAV.
pub(crate) const SILENCE_WAV: &str =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

/// The MIME type of [`SILENCE_WAV`].
pub(crate) const WAV: &str = "audio/wav";
