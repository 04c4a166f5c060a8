//! The ironfence daemon's IO: RADIUS UDP listeners, accounting, audit writer, metrics HTTP.
