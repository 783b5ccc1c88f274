//! Local emulation of the remote APIs expedite talks to (built under issue 3).
