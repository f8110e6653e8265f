//! HTTP basic authentication (`basic_auth_users` of `--web.config.file`), bcrypt hashes.
//!
//! bcrypt is deliberately slow (tens of milliseconds at cost 10), so:
//! - verification runs on the blocking pool (`spawn_blocking`), never on the async threads that
//!   accept connections and serve `/metrics`, and at most one per core runs at a time, so a flood
//!   of bad passwords cannot take every thread;
//! - results are cached, keyed by the user and an HMAC of the password under a key drawn at start
//!   (the cache never holds anything a password could be recovered from offline), in two bounded
//!   maps: denials never evict the scraper's cached success;
//! - an unknown user is verified against a dummy hash of the highest configured cost and then
//!   refused, so response time does not tell which users exist.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ring::hmac;
use tokio::sync::Semaphore;

/// The `WWW-Authenticate` value of a 401.
pub const CHALLENGE: &str = "Basic realm=\"chainwatch\"";

/// How many distinct (user, password) results are remembered, per outcome.
const ALLOWED_CAPACITY: usize = 256;
const DENIED_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user `{user}`: not a bcrypt hash ({source}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")]
    BadHash {
        user: String,
        source: bcrypt::BcryptError,
    },
    #[error("cannot draw a random key: {0}")]
    Random(String),
}

impl AuthError {
    /// The web config field this error is about.
    pub fn field(&self) -> String {
        match self {
            AuthError::BadHash { user, .. } => format!("basic_auth_users.{user}"),
            AuthError::Random(_) => "basic_auth_users".into(),
        }
    }
}

/// (user, HMAC of the password).
type CacheKey = (String, Vec<u8>);

/// A FIFO-bounded map: the oldest entry goes when full.
struct Bounded {
    capacity: usize,
    set: HashSet<CacheKey>,
    order: VecDeque<CacheKey>,
}

impl Bounded {
    fn new(capacity: usize) -> Bounded {
        Bounded {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, k: &CacheKey) -> bool {
        self.set.contains(k)
    }

    fn insert(&mut self, k: CacheKey) {
        if self.set.contains(&k) {
            return;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(k.clone());
        self.order.push_back(k);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

struct Cache {
    allowed: Bounded,
    denied: Bounded,
}

pub struct BasicAuth {
    /// user → bcrypt hash.
    users: HashMap<String, String>,
    /// A hash of the highest configured cost that no password matches in practice.
    dummy: String,
    key: hmac::Key,
    cache: Mutex<Cache>,
    /// Bounds concurrent bcrypt runs to the number of cores.
    permits: Semaphore,
}

impl BasicAuth {
    /// Check every hash now, so a bad one is refused at start rather than at the first scrape.
    pub fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, AuthError> {
        let mut max_cost = 4;
        for (user, hash) in &users {
            let parts: bcrypt::HashParts = hash.parse().map_err(|source| AuthError::BadHash {
                user: user.clone(),
                source,
            })?;
            max_cost = max_cost.max(parts.get_cost());
        }
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| AuthError::Random("HMAC key".into()))?;
        let dummy = dummy_hash(max_cost, &rng)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(BasicAuth {
            users: users.into_iter().collect(),
            dummy,
            key,
            cache: Mutex::new(Cache {
                allowed: Bounded::new(ALLOWED_CAPACITY),
                denied: Bounded::new(DENIED_CAPACITY),
            }),
            permits: Semaphore::new(cores),
        })
    }

    /// Whether the request's `Authorization` header carries valid credentials.
    pub async fn check(self: &Arc<Self>, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let key = self.cache_key(&user, &password);
        {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if c.allowed.contains(&key) {
                return true;
            }
            if c.denied.contains(&key) {
                return false;
            }
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let me = self.clone();
        let ok = tokio::task::spawn_blocking(move || me.verify(&user, &password))
            .await
            .unwrap_or(false);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            c.allowed.insert(key);
        } else {
            c.denied.insert(key);
        }
        ok
    }

    /// The bcrypt comparison itself (blocking). Known or not, a user costs one bcrypt run.
    fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.dummy);
                false
            }
        }
    }

    fn cache_key(&self, user: &str, password: &[u8]) -> CacheKey {
        (
            user.to_string(),
            hmac::sign(&self.key, password).as_ref().to_vec(),
        )
    }

    #[cfg(test)]
    fn cached(&self) -> (usize, usize) {
        let c = self.cache.lock().unwrap();
        (c.allowed.len(), c.denied.len())
    }
}

/// A syntactically valid bcrypt hash of `cost` with a random salt. Verifying against it costs
/// exactly what a real hash of that cost does; building it costs nothing (the cost field of a
/// cheap cost-4 hash is rewritten, the hash part is never compared successfully anyway).
fn dummy_hash(cost: u32, rng: &ring::rand::SystemRandom) -> Result<String, AuthError> {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; 16];
    let mut secret = [0u8; 32];
    rng.fill(&mut salt)
        .and_then(|_| rng.fill(&mut secret))
        .map_err(|_| AuthError::Random("dummy hash".into()))?;
    let cheap = bcrypt::hash_with_salt(secret, 4, salt).map_err(|source| AuthError::BadHash {
        user: "<dummy>".into(),
        source,
    })?;
    let s = cheap.format_for_version(bcrypt::Version::TwoB);
    // "$2b$04$" + 53 characters of salt and hash.
    Ok(format!("$2b${cost:02}${}", &s[7..]))
}

/// `Basic base64(user:password)`, the scheme name case-insensitive (RFC 7617).
fn parse_basic(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
        .into_bytes()
    }

    fn auth() -> Arc<BasicAuth> {
        let mut users = BTreeMap::new();
        users.insert("alice".into(), bcrypt::hash("right", 5).unwrap());
        users.insert("bob".into(), bcrypt::hash("other", 4).unwrap());
        Arc::new(BasicAuth::new(users).unwrap())
    }

    #[tokio::test]
    async fn right_wrong_unknown_and_cached() {
        let a = auth();
        assert!(a.check(Some(&header("alice", "right"))).await);
        assert!(!a.check(Some(&header("alice", "wrong"))).await);
        assert!(!a.check(Some(&header("mallory", "right"))).await);
        assert!(!a.check(None).await);
        assert!(!a.check(Some(b"Bearer xyz")).await);
        assert!(!a.check(Some(b"Basic !!!")).await);
        assert_eq!(a.cached(), (1, 2));
        // Cached answers are the same answers.
        assert!(a.check(Some(&header("alice", "right"))).await);
        assert!(!a.check(Some(&header("alice", "wrong"))).await);
        assert_eq!(a.cached(), (1, 2));
        // The password is part of the key: a cached success does not let another password in.
        assert!(!a.check(Some(&header("alice", "right2"))).await);
        assert!(a.check(Some(&header("alice", "right"))).await);
        assert!(a.check(Some(b"basic YWxpY2U6cmlnaHQ=")).await);
    }

    #[test]
    fn dummy_costs_as_much_as_the_dearest_user() {
        let a = auth();
        let parts: bcrypt::HashParts = a.dummy.parse().unwrap();
        assert_eq!(parts.get_cost(), 5);
        // It is a hash bcrypt accepts (so the unknown-user path really runs bcrypt).
        assert_eq!(bcrypt::verify("anything", &a.dummy).ok(), Some(false));
    }

    #[test]
    fn caches_are_bounded_and_denials_do_not_evict_successes() {
        let mut c = Cache {
            allowed: Bounded::new(2),
            denied: Bounded::new(3),
        };
        c.allowed.insert(("alice".into(), vec![1]));
        for i in 0..100u8 {
            c.denied.insert(("x".into(), vec![i]));
        }
        assert_eq!(c.denied.len(), 3);
        assert!(c.allowed.contains(&("alice".into(), vec![1])));
        assert!(c.denied.contains(&("x".into(), vec![99])));
        assert!(!c.denied.contains(&("x".into(), vec![0])));
    }

    #[test]
    fn bad_hash_names_the_user() {
        let mut users = BTreeMap::new();
        users.insert("carol".into(), "plaintext".into());
        let e = BasicAuth::new(users).err().unwrap();
        assert_eq!(e.field(), "basic_auth_users.carol");
    }
}
