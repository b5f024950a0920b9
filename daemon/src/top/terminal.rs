//! The terminal, with plain ANSI escape codes and termios: the alternate
//! screen (so the operator's scrollback is untouched), a hidden cursor, and
//! keys read one at a time without echo. [`Terminal`] puts everything back
//! when dropped, whichever way `top` ends: `q`, Ctrl-C, a signal, an error
//! or a panic.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Switch to the alternate screen, hide the cursor.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Show the cursor, back to the normal screen.
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
/// Cursor to the top left corner.
const HOME: &str = "\x1b[H";
/// Clear to the end of the line.
const CLEAR_LINE: &str = "\x1b[K";
/// Clear from the cursor to the end of the screen.
const CLEAR_BELOW: &str = "\x1b[J";

/// What the operator typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `q`, `Q`, Ctrl-C or Ctrl-D.
    Quit,
    /// Anything else.
    Other,
}

/// Whether the standard output is a terminal.
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal()
}

/// The live screen. Created by [`Terminal::enter`]; dropping it restores
/// the terminal.
#[derive(Debug)]
pub struct Terminal {
    /// The input settings to restore; `None` when stdin is not a terminal
    /// (keys are then not read, and signals end `top`).
    saved: Option<libc::termios>,
    /// Set when stdin reached its end, so it is not polled again.
    input_closed: bool,
}

impl Terminal {
    /// Switches to the alternate screen and, when stdin is a terminal,
    /// reads keys as they are typed, without echo. Ctrl-C arrives as a key
    /// (ISIG off) so that it ends `top` through the same path as `q`.
    pub fn enter() -> io::Result<Terminal> {
        let fd = io::stdin().as_raw_fd();
        let mut saved = None;
        // SAFETY: a zeroed termios is a valid value for tcgetattr to fill.
        let mut attrs: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is stdin, open for the life of the process; `attrs`
        // is a valid, writable termios.
        if unsafe { libc::tcgetattr(fd, &mut attrs) } == 0 {
            saved = Some(attrs);
            let mut raw = attrs;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            // SAFETY: as above; `raw` is a valid termios derived from the
            // current one.
            if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let terminal = Terminal {
            saved,
            input_closed: saved.is_none(),
        };
        let mut out = io::stdout().lock();
        out.write_all(ENTER.as_bytes())?;
        out.flush()?;
        Ok(terminal)
    }

    /// Draws `lines` over the previous frame: each line overwrites the old
    /// one and clears its rest, then everything below is cleared, so the
    /// screen never flashes blank between frames.
    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let mut frame = String::from(HOME);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                frame.push_str("\r\n");
            }
            frame.push_str(line);
            frame.push_str(CLEAR_LINE);
        }
        frame.push_str(CLEAR_BELOW);
        let mut out = io::stdout().lock();
        out.write_all(frame.as_bytes())?;
        out.flush()
    }

    /// Waits up to `timeout` for a key. Returns `None` when none came (or
    /// stdin is not a terminal, or a signal interrupted the wait).
    pub fn key(&mut self, timeout: Duration) -> io::Result<Option<Key>> {
        if self.input_closed {
            std::thread::sleep(timeout);
            return Ok(None);
        }
        let fd = io::stdin().as_raw_fd();
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `poll` is one valid pollfd, and the count says one.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        if ready == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            // End of input (or an error on it): keep showing, stop reading.
            self.input_closed = true;
            return Ok(None);
        }
        let typed = &buf[..usize::try_from(n).unwrap_or(0)];
        // Ctrl-C (ETX) and Ctrl-D (EOT) arrive as bytes with ISIG off.
        if typed.iter().any(|b| matches!(b, b'q' | b'Q' | 0x03 | 0x04)) {
            Ok(Some(Key::Quit))
        } else {
            Ok(Some(Key::Other))
        }
    }

    /// Columns and rows of the terminal on stdout; 80×24 when it does not
    /// say.
    pub fn size(&self) -> (usize, usize) {
        // SAFETY: a zeroed winsize is a valid value for the ioctl to fill.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize into the valid `size`.
        let ok = unsafe { libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 && size.ws_row > 0 {
            (usize::from(size.ws_col), usize::from(size.ws_row))
        } else {
            (80, 24)
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(LEAVE.as_bytes());
        let _ = out.flush();
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read from the same descriptor
            // in `enter`.
            unsafe { libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, saved) };
        }
    }
}
