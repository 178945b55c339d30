//! Which leases to take: expiry on the observer's clock, fair share, stealing.
//!
//! Pure logic over a scan and an instant, so timing is tested without a clock or a table.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::seq::SliceRandom;
use tokio::time::Instant;

use super::Lease;

/// What one worker last saw of each lease's counter, and when it last changed.
#[derive(Debug, Default)]
pub(crate) struct Observations {
    seen: HashMap<String, (u64, Instant)>,
    /// When each lease under a graceful handoff was first seen so.
    handoffs: HashMap<String, Instant>,
}

/// Leases to take, each with the counter the take is conditioned on.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Expired or unowned leases.
    pub take: Vec<(String, u64)>,
    /// Leases held by a live, overloaded worker.
    pub steal: Vec<(String, u64)>,
    /// Statistics for metrics.
    pub workers: usize,
    /// Target leases for this worker.
    pub target: usize,
    /// Leases available (expired or unowned).
    pub expired: usize,
    /// Leases that could be processed now.
    pub total: usize,
    /// Leases beyond `max_leases_for_worker` this worker would need for an even share.
    pub spillover: usize,
}

/// Balancing settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TakerSettings {
    pub failover: Duration,
    pub max_leases_for_worker: usize,
    pub max_leases_to_steal_at_one_time: usize,
    /// How long a graceful handoff may take before the lease is taken by force.
    pub handoff_timeout: Duration,
}

impl Observations {
    /// Records a scan taken at `now`. A counter seen for the first time on an owned lease counts
    /// as just renewed (the observer cannot know better); an unowned lease is available anyway.
    pub fn update(&mut self, leases: &[Lease], now: Instant) {
        let mut next = HashMap::with_capacity(leases.len());
        for lease in leases {
            let since = match self.seen.get(&lease.key) {
                Some((counter, since)) if *counter == lease.counter => *since,
                _ => now,
            };
            next.insert(lease.key.clone(), (lease.counter, since));
        }
        self.seen = next;
        let mut handoffs = HashMap::new();
        for lease in leases.iter().filter(|l| l.checkpoint_owner.is_some()) {
            let since = self.handoffs.get(&lease.key).copied().unwrap_or(now);
            handoffs.insert(lease.key.clone(), since);
        }
        self.handoffs = handoffs;
    }

    /// Whether `lease` is under a graceful handoff that has run longer than `timeout`.
    pub fn handoff_overdue(&self, lease: &Lease, now: Instant, timeout: Duration) -> bool {
        lease.checkpoint_owner.is_some()
            && self
                .handoffs
                .get(&lease.key)
                .is_some_and(|since| now.saturating_duration_since(*since) > timeout)
    }

    /// When this worker first saw `key` at `counter`, if that is the counter it last saw.
    pub fn since(&self, key: &str, counter: u64) -> Option<Instant> {
        match self.seen.get(key) {
            Some((seen, since)) if *seen == counter => Some(*since),
            _ => None,
        }
    }

    /// Whether `lease` has had no owner, or no counter change for longer than `failover`.
    pub fn is_expired(&self, lease: &Lease, now: Instant, failover: Duration) -> bool {
        if lease.owner.is_none() {
            return true;
        }
        match self.seen.get(&lease.key) {
            Some((counter, since)) if *counter == lease.counter => {
                now.saturating_duration_since(*since) > failover
            }
            _ => false,
        }
    }
}

impl Observations {
    /// When the next lease held by another worker expires if its counter does not move, so the
    /// taker can look right then instead of up to one taker interval later.
    pub fn next_expiry(
        &self,
        leases: &[Lease],
        me: &str,
        now: Instant,
        failover: Duration,
    ) -> Option<Instant> {
        leases
            .iter()
            .filter(|l| !l.is_finished() && l.owner.as_deref().is_some_and(|o| o != me))
            .filter_map(|l| match self.seen.get(&l.key) {
                Some((counter, since)) if *counter == l.counter => {
                    Some(*since + failover + Duration::from_millis(1))
                }
                _ => None,
            })
            .filter(|at| *at > now)
            .min()
    }
}

/// When worker `me` may start processing a lease it just took from `previous` owner, having
/// first seen the counter it took at `since`.
///
/// A lease another worker held (expired or stolen) waits until failover time after `since`: the
/// previous owner's own deadline is earlier (it counts from before the write that set the
/// counter, minus a margin), so it has stopped by then even if it never learned of the take.
/// A steal also waits at least `steal_delay`. An unowned lease, or one in this worker's own name
/// (an earlier incarnation), starts at once.
pub(crate) fn start_at(
    me: &str,
    previous: Option<&str>,
    since: Option<Instant>,
    now: Instant,
    failover: Duration,
    steal_delay: Option<Duration>,
) -> Instant {
    if previous.is_none_or(|p| p == me) {
        return now;
    }
    // Not seen at that counter (cannot happen for a planned take): wait a whole failover time.
    let expired_at = since.unwrap_or(now) + failover + Duration::from_millis(1);
    expired_at.max(now + steal_delay.unwrap_or_default())
}

/// Leases that can be processed now: not finished, and every parent finished or gone.
pub(crate) fn processable(leases: &[Lease]) -> Vec<&Lease> {
    let by_key: HashMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    leases
        .iter()
        .filter(|l| !l.is_finished())
        .filter(|l| {
            l.parent_shard_ids.iter().all(|p| {
                by_key
                    .get(p.as_str())
                    .is_none_or(|parent| parent.is_finished())
            })
        })
        .collect()
}

/// Plans the takes of worker `me`, which currently holds `held`.
pub(crate) fn plan(
    me: &str,
    held: &HashSet<String>,
    leases: &[Lease],
    seen: &Observations,
    now: Instant,
    settings: TakerSettings,
) -> Plan {
    let candidates = processable(leases);
    let mut available = Vec::new();
    let mut counts: HashMap<&str, Vec<&Lease>> = HashMap::new();
    for lease in &candidates {
        let owner = lease.owner.as_deref();
        if held.contains(&lease.key) && owner == Some(me) {
            counts.entry(me).or_default().push(lease);
        } else if owner == Some(me)
            && lease.checkpoint_owner.is_some()
            && !seen.is_expired(lease, now, settings.failover)
            && !seen.handoff_overdue(lease, now, settings.handoff_timeout)
        {
            // Being handed to me: mine once the holder lets it go (then it is taken below).
            counts.entry(me).or_default().push(lease);
        } else if owner == Some(me) || seen.is_expired(lease, now, settings.failover) {
            // A lease in my name that I do not run (an earlier incarnation of this worker id) is
            // free: nobody is processing it.
            available.push(*lease);
        } else if let Some(owner) = owner {
            counts.entry(owner).or_default().push(lease);
        }
    }
    counts.entry(me).or_default();
    let workers = counts.len();
    let total = candidates.len();
    let mut target = if total == 0 {
        0
    } else if workers >= total {
        1
    } else {
        total.div_ceil(workers)
    };
    let mut spillover = 0;
    if target > settings.max_leases_for_worker {
        tracing::debug!(
            target,
            max = settings.max_leases_for_worker,
            "LeaseSpillover"
        );
        spillover = target - settings.max_leases_for_worker;
        target = settings.max_leases_for_worker;
    }
    let mine = counts.get(me).map_or(0, Vec::len);
    let mut plan = Plan {
        workers,
        target,
        expired: available.len(),
        total,
        spillover,
        ..Plan::default()
    };
    let needed = target.saturating_sub(mine);
    if needed == 0 {
        return plan;
    }
    let mut rng = rand::rng();
    if !available.is_empty() {
        available.shuffle(&mut rng);
        plan.take = available
            .iter()
            .take(needed)
            .map(|l| (l.key.clone(), l.counter))
            .collect();
        return plan;
    }
    // Nothing free: steal from the most loaded worker, a few at a time, so the fleet converges
    // without leases bouncing between workers.
    let Some((_, victim)) = counts
        .iter()
        .filter(|(owner, _)| **owner != me)
        .max_by_key(|(owner, leases)| (leases.len(), std::cmp::Reverse(**owner)))
    else {
        return plan;
    };
    let count = victim.len();
    let to_steal = if count > target {
        needed.min(count - target)
    } else if count == target && needed > 1 && count > mine + 1 {
        1
    } else {
        0
    }
    .min(settings.max_leases_to_steal_at_one_time);
    let mut victims = victim.clone();
    victims.shuffle(&mut rng);
    plan.steal = victims
        .iter()
        .take(to_steal)
        .map(|l| (l.key.clone(), l.counter))
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::Checkpoint;

    const SETTINGS: TakerSettings = TakerSettings {
        failover: Duration::from_secs(10),
        max_leases_for_worker: usize::MAX,
        max_leases_to_steal_at_one_time: 1,
        handoff_timeout: Duration::from_secs(30),
    };

    fn lease(key: &str, owner: Option<&str>, counter: u64) -> Lease {
        let mut l = Lease::new(key, Checkpoint::TrimHorizon);
        l.owner = owner.map(Into::into);
        l.counter = counter;
        l
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_being_handed_to_me_is_mine_until_the_handoff_is_overdue() {
        let mut seen = Observations::default();
        let handing = |counter| {
            let mut l = lease("a", Some("me"), counter);
            l.checkpoint_owner = Some("old".into());
            vec![l, lease("b", Some("old"), counter)]
        };
        let held = HashSet::new();
        seen.update(&handing(5), Instant::now());
        let p = plan("me", &held, &handing(5), &seen, Instant::now(), SETTINGS);
        assert_eq!((p.take.len(), p.steal.len()), (0, 0), "pending: my share");
        // The holder keeps its counter moving (it ignores the handoff): never expired, but
        // overdue past the handoff timeout, then taken by force.
        for counter in 6..9 {
            tokio::time::advance(Duration::from_secs(11)).await;
            seen.update(&handing(counter), Instant::now());
        }
        assert!(!seen.is_expired(&handing(8)[0], Instant::now(), SETTINGS.failover));
        let p = plan("me", &held, &handing(8), &seen, Instant::now(), SETTINGS);
        assert_eq!(p.take, vec![("a".to_owned(), 8)]);
        // Handed over (no checkpoint owner): mine but not running, taken at once.
        let done = vec![lease("a", Some("me"), 9), lease("b", Some("old"), 9)];
        seen.update(&done, Instant::now());
        let p = plan("me", &held, &done, &seen, Instant::now(), SETTINGS);
        assert_eq!(p.take, vec![("a".to_owned(), 9)]);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_is_judged_on_the_observers_clock() {
        let mut seen = Observations::default();
        let leases = vec![lease("a", Some("w1"), 5)];
        seen.update(&leases, Instant::now());
        tokio::time::advance(Duration::from_secs(10)).await;
        seen.update(&leases, Instant::now());
        assert!(!seen.is_expired(&leases[0], Instant::now(), SETTINGS.failover));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(seen.is_expired(&leases[0], Instant::now(), SETTINGS.failover));
        assert_eq!(
            seen.next_expiry(&leases, "w2", Instant::now(), SETTINGS.failover),
            None,
            "already expired"
        );
        // A renewal (counter moved) restarts the observation.
        let renewed = vec![lease("a", Some("w1"), 6)];
        seen.update(&renewed, Instant::now());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!seen.is_expired(&renewed[0], Instant::now(), SETTINGS.failover));
        let at = seen.next_expiry(&renewed, "w2", Instant::now(), SETTINGS.failover);
        assert_eq!(at, Some(Instant::now() + Duration::from_millis(1_001)));
        assert_eq!(
            seen.next_expiry(&renewed, "w1", Instant::now(), SETTINGS.failover),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_from_another_worker_starts_once_it_would_have_expired() {
        let failover = SETTINGS.failover;
        let since = Instant::now();
        tokio::time::advance(Duration::from_secs(4)).await;
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Stolen from a live worker first seen at this counter 4 s ago: 6 s more.
        assert_eq!(
            start_at(
                "me",
                Some("w2"),
                Some(since),
                now,
                failover,
                Some(ms(3_408))
            ),
            since + failover + ms(1)
        );
        // Expired long ago: at once.
        tokio::time::advance(Duration::from_secs(20)).await;
        let now = Instant::now();
        assert_eq!(
            start_at("me", Some("w2"), Some(since), now, failover, None),
            now
        );
        // A steal waits at least its delay.
        assert_eq!(
            start_at(
                "me",
                Some("w2"),
                Some(since),
                now,
                failover,
                Some(ms(3_408))
            ),
            now + ms(3_408)
        );
        // Unowned, or in this worker's own name: at once.
        assert_eq!(start_at("me", None, Some(now), now, failover, None), now);
        assert_eq!(
            start_at("me", Some("me"), Some(now), now, failover, None),
            now
        );
    }

    #[tokio::test(start_paused = true)]
    async fn takes_its_share_of_unowned_leases() {
        let leases: Vec<_> = (0..6).map(|i| lease(&format!("s{i}"), None, 0)).collect();
        let mut seen = Observations::default();
        seen.update(&leases, Instant::now());
        let p = plan(
            "w1",
            &HashSet::new(),
            &leases,
            &seen,
            Instant::now(),
            SETTINGS,
        );
        assert_eq!(p.take.len(), 6, "alone, a worker takes everything");
        let mut leases = leases;
        for l in &mut leases[..3] {
            l.owner = Some("w2".into());
        }
        leases[3].owner = Some("w3".into());
        seen.update(&leases, Instant::now());
        let p = plan(
            "w1",
            &HashSet::new(),
            &leases,
            &seen,
            Instant::now(),
            SETTINGS,
        );
        assert_eq!(p.target, 2);
        assert_eq!(p.take.len(), 2);
        assert!(p.steal.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn steals_one_from_the_most_loaded() {
        let leases: Vec<_> = (0..4)
            .map(|i| lease(&format!("s{i}"), Some("w2"), 1))
            .collect();
        let mut seen = Observations::default();
        seen.update(&leases, Instant::now());
        let p = plan(
            "w1",
            &HashSet::new(),
            &leases,
            &seen,
            Instant::now(),
            SETTINGS,
        );
        assert!(p.take.is_empty());
        assert_eq!(p.steal.len(), 1);
        let held: HashSet<String> = ["s0".to_string(), "s1".to_string()].into();
        let mut balanced = leases.clone();
        balanced[0].owner = Some("w1".into());
        balanced[1].owner = Some("w1".into());
        seen.update(&balanced, Instant::now());
        let p = plan("w1", &held, &balanced, &seen, Instant::now(), SETTINGS);
        assert_eq!(
            p,
            Plan {
                workers: 2,
                target: 2,
                total: 4,
                ..Plan::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn children_wait_for_all_parents() {
        let mut parent_a = lease("a", Some("w2"), 1);
        let parent_b = lease("b", Some("w2"), 1);
        let mut child = lease("c", None, 0);
        child.parent_shard_ids = vec!["a".into(), "b".into()];
        let leases = vec![parent_a.clone(), parent_b.clone(), child.clone()];
        assert_eq!(processable(&leases).len(), 2);
        parent_a.checkpoint = Checkpoint::ShardEnd;
        let leases = vec![parent_a.clone(), parent_b, child.clone()];
        assert!(!processable(&leases).iter().any(|l| l.key == "c"));
        let leases = vec![parent_a, child];
        assert!(
            processable(&leases).iter().any(|l| l.key == "c"),
            "absent parent counts as done"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn respects_max_leases_for_worker() {
        let leases: Vec<_> = (0..6).map(|i| lease(&format!("s{i}"), None, 0)).collect();
        let seen = Observations::default();
        let settings = TakerSettings {
            max_leases_for_worker: 2,
            ..SETTINGS
        };
        let p = plan(
            "w1",
            &HashSet::new(),
            &leases,
            &seen,
            Instant::now(),
            settings,
        );
        assert_eq!(p.take.len(), 2);
    }
}
