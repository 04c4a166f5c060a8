//! Ranking + health + drain → the ordered backends to try for one request.
//!
//! * Dead and reviving backends are skipped (reviving ones wait for
//!   `num_answers_to_alive` probe answers).
//! * A backend in maintenance (drain) takes no new conversation, but finishes those in
//!   flight: a request carrying a State attribute (a later round of an EAP conversation,
//!   RFC 2865 §5.24) still goes to it; one without State skips it, and comes back to it only
//!   as the last resort, when no other backend is alive or zombie (an answer from a member in
//!   maintenance is better than none).
//! * Zombies (missed an answer, not yet dead) are tried after every alive backend, in their
//!   ranking order: they may only be slow, and a request with nowhere else to go is better
//!   tried there than unanswered.
//!
//! The result keeps the ranking order otherwise, so a conversation sticks to its first
//! backend for as long as that one is healthy.

use crate::health::HealthState;

/// What selection needs to know about one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendView {
    /// Its health.
    pub health: HealthState,
    /// In maintenance: no new conversations.
    pub draining: bool,
}

/// The backends to try, in order (indices into `views`), for a request ranked `ranking`
/// (from [`crate::rank`]); `continuing` is true when the request carries State.
pub fn candidates(ranking: &[usize], views: &[BackendView], continuing: bool) -> Vec<usize> {
    let usable = |i: &&usize| views.get(**i).is_some_and(|v| !v.draining || continuing);
    let alive = ranking
        .iter()
        .filter(usable)
        .filter(|i| views[**i].health == HealthState::Alive);
    let zombies = ranking
        .iter()
        .filter(usable)
        .filter(|i| matches!(views[**i].health, HealthState::Zombie { .. }));
    // Last resort for a new conversation: a draining member that is alive, rather than no
    // answer at all (maintenance is the operator's preference, not a failure).
    let drained = ranking.iter().filter(|i| {
        !continuing
            && views
                .get(**i)
                .is_some_and(|v| v.draining && v.health == HealthState::Alive)
    });
    alive.chain(zombies).chain(drained).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const ALIVE: BackendView = BackendView {
        health: HealthState::Alive,
        draining: false,
    };

    #[test]
    fn selection_table() {
        let t = Instant::now();
        let zombie = BackendView {
            health: HealthState::Zombie { since: t },
            draining: false,
        };
        let dead = BackendView {
            health: HealthState::Dead,
            draining: false,
        };
        let reviving = BackendView {
            health: HealthState::Reviving { answers: 2 },
            draining: false,
        };
        let draining = BackendView {
            health: HealthState::Alive,
            draining: true,
        };
        let ranking = [2, 0, 1];
        // (views of backends 0, 1, 2; carries State; expected order)
        let rows: &[([BackendView; 3], bool, &[usize])] = &[
            ([ALIVE, ALIVE, ALIVE], false, &[2, 0, 1]),
            ([ALIVE, ALIVE, dead], false, &[0, 1]),
            ([ALIVE, ALIVE, reviving], false, &[0, 1]),
            ([ALIVE, ALIVE, zombie], false, &[0, 1, 2]),
            ([zombie, ALIVE, zombie], false, &[1, 2, 0]),
            ([dead, dead, dead], false, &[]),
            // Drain: new conversations go to it last (only when nobody else is there),
            // continuing ones still reach it first.
            ([ALIVE, ALIVE, draining], false, &[0, 1, 2]),
            ([ALIVE, ALIVE, draining], true, &[2, 0, 1]),
            ([zombie, dead, draining], false, &[0, 2]),
            ([draining, draining, draining], false, &[2, 0, 1]),
            ([draining, draining, draining], true, &[2, 0, 1]),
            (
                [
                    dead,
                    dead,
                    BackendView {
                        health: HealthState::Dead,
                        draining: true,
                    },
                ],
                false,
                &[],
            ),
        ];
        for (i, (views, continuing, want)) in rows.iter().enumerate() {
            assert_eq!(
                candidates(&ranking, views, *continuing),
                want.to_vec(),
                "row {i}"
            );
        }
    }

    #[test]
    fn a_ranking_naming_an_unknown_backend_skips_it() {
        assert_eq!(candidates(&[5, 0], &[ALIVE], false), vec![0]);
    }
}
