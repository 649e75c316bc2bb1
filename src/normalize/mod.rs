//! Normalize: canonical URLs ([`url`]), plain-text cleanup ([`text`]) and HTML sanitising for
//! republishing ([`html`]).

pub mod html;
pub mod text;
pub mod url;
