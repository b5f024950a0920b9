//! The group as Kafka describes it, for `GET /api/v1/cluster`: every
//! member's name (from its client id) and the work topics assigned to it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{PeerView, Shared};

/// Every member's `client.id` starts with this, followed by its name.
pub(super) const CLIENT_ID_PREFIX: &str = "tributary@";

/// How long the API waits for Kafka's description of the group.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The group's members and their units (classic groups only: the classic
/// DescribeGroups request does not describe a KIP-848 group).
pub(super) fn describe(shared: &Shared) -> Result<Vec<PeerView>, String> {
    let client: BaseConsumer = shared
        .client
        .create()
        .map_err(|e| format!("cannot create a client: {e}"))?;
    let group_id = format!("tributary-cluster.{}", shared.group);
    let list = client
        .fetch_group_list(Some(&group_id), DESCRIBE_TIMEOUT)
        .map_err(|e| format!("cannot describe group `{group_id}`: {e}"))?;
    let topics = shared.work_topics().map_err(|e| e.to_string())?;
    let mut peers = Vec::new();
    for group in list.groups() {
        if group.name() != group_id {
            continue;
        }
        if group.protocol_type() != "consumer" && !group.members().is_empty() {
            return Err(format!(
                "group `{group_id}` has protocol type `{}`",
                group.protocol_type()
            ));
        }
        for member in group.members() {
            let name = member
                .client_id()
                .strip_prefix(CLIENT_ID_PREFIX)
                .unwrap_or(member.client_id())
                .to_owned();
            let units = member
                .assignment()
                .map(assigned_topics)
                .unwrap_or_default()
                .into_iter()
                .map(|topic| topics.get(&topic).cloned().unwrap_or(topic))
                .collect();
            peers.push(PeerView {
                name,
                member_id: member.id().to_owned(),
                host: member.client_host().to_owned(),
                units,
            });
        }
    }
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(peers)
}

/// The topics of a classic consumer-protocol assignment: a version
/// (int16), an array (int32 count) of topic (int16-length string) and
/// partitions (an int32 array), then user data. Anything malformed yields
/// the topics read so far.
fn assigned_topics(bytes: &[u8]) -> Vec<String> {
    let mut reader = Reader(bytes);
    let mut topics = Vec::new();
    let Some(_version) = reader.i16() else {
        return topics;
    };
    let Some(count) = reader.i32() else {
        return topics;
    };
    for _ in 0..count.max(0) {
        let Some(topic) = reader.string() else {
            break;
        };
        let Some(partitions) = reader.i32() else {
            break;
        };
        if reader
            .skip(4 * usize::try_from(partitions.max(0)).unwrap_or(0))
            .is_none()
        {
            break;
        }
        topics.push(topic);
    }
    topics
}

/// Big-endian reads over a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out
    }

    #[test]
    fn a_classic_assignment_names_its_topics() {
        let bytes = assignment(&[
            ("tributary-cluster.g.a", &[0]),
            ("tributary-cluster.g.b", &[0, 1]),
        ]);
        assert_eq!(
            assigned_topics(&bytes),
            ["tributary-cluster.g.a", "tributary-cluster.g.b"]
        );
    }

    #[test]
    fn a_truncated_assignment_yields_what_was_read_and_never_panics() {
        let bytes = assignment(&[
            ("tributary-cluster.g.a", &[0]),
            ("tributary-cluster.g.b", &[0]),
        ]);
        for cut in 0..bytes.len() {
            let topics = assigned_topics(&bytes[..cut]);
            assert!(topics.len() <= 2);
        }
        assert!(assigned_topics(&[]).is_empty());
    }
}
