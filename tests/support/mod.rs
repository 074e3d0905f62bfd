//! Fixtures shared by the integration tests: stand-ins for the services sitrep talks to.

#[allow(dead_code)]
pub mod alertmanager;
#[allow(dead_code)]
pub mod bot;
pub mod discord;
#[allow(dead_code)]
pub mod load;
pub mod prometheus;

/// Checks that every needle is in `text`, each after the one before.
#[allow(dead_code)]
pub fn assert_in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for n in needles {
        match text[from..].find(n) {
            Some(i) => from += i + n.len(),
            None => panic!(
                "{n:?} is missing or out of order; after byte {from} it reads:\n{}\n\nthe whole text:\n{text}",
                &text[from..]
            ),
        }
    }
}
