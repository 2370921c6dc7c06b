//! Access tokens and the OAuth refresh endpoint's rules: expiry, client checks and Zoho's
//! limit of ten tokens per refresh token per ten minutes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Zoho counts minted tokens over this sliding window.
pub const MINT_WINDOW: Duration = Duration::from_secs(600);
/// What `expires_in` says when tokens never expire in the mock: Zoho's usual hour.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
const TOKEN_SALT: u64 = 0x70_6b_65_6e;

/// How a presented token was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Valid; carries its expiry (None = never) for the `X-ACCESSTOKEN-RESET` header.
    Valid(Option<Instant>),
    Invalid,
}

/// The answer to a refresh request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintOutcome {
    Minted { token: String, expires_in: u64 },
    InvalidClient,
    InvalidCode,
    TooMany,
}

#[derive(Debug)]
pub struct Tokens {
    live: HashMap<String, Option<Instant>>,
    minted: VecDeque<Instant>,
    rng: StdRng,
    lifetime: Option<Duration>,
    max_per_window: Option<u32>,
    pub refreshes: u64,
}

impl Tokens {
    pub fn new(
        initial: &str,
        lifetime: Option<Duration>,
        max_per_window: Option<u32>,
        seed: u64,
        now: Instant,
    ) -> Tokens {
        let mut live = HashMap::new();
        live.insert(initial.to_string(), lifetime.map(|l| now + l));
        Tokens {
            live,
            minted: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed ^ TOKEN_SALT),
            lifetime,
            max_per_window,
            refreshes: 0,
        }
    }

    pub fn check(&self, token: &str, now: Instant) -> TokenCheck {
        match self.live.get(token) {
            Some(None) => TokenCheck::Valid(None),
            Some(Some(expiry)) if now < *expiry => TokenCheck::Valid(Some(*expiry)),
            _ => TokenCheck::Invalid,
        }
    }

    /// Mints a token if the credentials are right and the window allows one more. The client
    /// is checked before the refresh token, as Zoho does (a wrong client never reveals whether
    /// the refresh token was good).
    pub fn mint(&mut self, client_ok: bool, refresh_ok: bool, now: Instant) -> MintOutcome {
        if !client_ok {
            return MintOutcome::InvalidClient;
        }
        if !refresh_ok {
            return MintOutcome::InvalidCode;
        }
        while let Some(first) = self.minted.front() {
            if now.duration_since(*first) >= MINT_WINDOW {
                self.minted.pop_front();
            } else {
                break;
            }
        }
        if let Some(max) = self.max_per_window {
            if self.minted.len() >= max as usize {
                return MintOutcome::TooMany;
            }
        }
        self.minted.push_back(now);
        // Zoho's tokens look like "1000.<32 hex>.<32 hex>".
        let a: u128 = self.rng.random();
        let b: u128 = self.rng.random();
        let token = format!("1000.{a:032x}.{b:032x}");
        self.live
            .insert(token.clone(), self.lifetime.map(|l| now + l));
        // Expired tokens are dropped here so a long soak does not grow the map without bound.
        self.live.retain(|_, expiry| expiry.is_none_or(|e| now < e));
        self.refreshes += 1;
        // Whole seconds rounded down, as a client must read them: a token advertised
        // longer than it lives would be refreshed too late.
        let expires_in = self.lifetime.unwrap_or(DEFAULT_LIFETIME).as_secs();
        MintOutcome::Minted { token, expires_in }
    }
}

/// The token in an `Authorization` header value: `Zoho-oauthtoken T` or `Bearer T`.
pub fn token_from_header(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("Zoho-oauthtoken") || scheme.eq_ignore_ascii_case("Bearer") {
        Some(token.trim())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mint_window_slides() {
        let start = Instant::now();
        let mut tokens = Tokens::new("t", None, Some(2), 1, start);
        assert!(matches!(
            tokens.mint(true, true, start),
            MintOutcome::Minted { .. }
        ));
        assert!(matches!(
            tokens.mint(true, true, start),
            MintOutcome::Minted { .. }
        ));
        assert_eq!(tokens.mint(true, true, start), MintOutcome::TooMany);
        let later = start + MINT_WINDOW;
        assert!(matches!(
            tokens.mint(true, true, later),
            MintOutcome::Minted { .. }
        ));
    }

    #[test]
    fn tokens_expire() {
        let start = Instant::now();
        let tokens = Tokens::new("t", Some(Duration::from_secs(5)), None, 1, start);
        assert!(matches!(tokens.check("t", start), TokenCheck::Valid(_)));
        assert_eq!(
            tokens.check("t", start + Duration::from_secs(5)),
            TokenCheck::Invalid
        );
    }

    #[test]
    fn both_header_schemes_are_accepted() {
        assert_eq!(token_from_header("Zoho-oauthtoken abc"), Some("abc"));
        assert_eq!(token_from_header("Bearer abc"), Some("abc"));
        assert_eq!(token_from_header("Basic abc"), None);
        assert_eq!(token_from_header("abc"), None);
    }
}
