/*
 * config.c -- the settings minikora knows, by Kafka's names, with Kafka's
 * defaults where Kafka has them, and the properties-file reader.
 *
 * One table (defs[]) is the only list: flag parsing, the properties file,
 * DescribeConfigs and topic overrides all read it.  Topic settings carry the
 * broker setting that supplies their default (Kafka's "synonyms").  minikora's
 * own settings are prefixed "minikora.".
 */
#include "cluster/cluster.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define B MK_CFG_SCOPE_BROKER
#define T MK_CFG_SCOPE_TOPIC
#define LMAX "9223372036854775807"

static const mk_cfg_def_t defs[] = {
    /* broker settings */
    {"broker.id", MK_CFG_INT, B, "1", NULL, true, "First broker id; brokers are numbered from it."},
    {"num.partitions", MK_CFG_INT, B, "1", NULL, false, "Partitions of an auto-created topic or of a CreateTopics request that leaves the count to the broker."},
    {"default.replication.factor", MK_CFG_SHORT, B, "3", NULL, false, "Replication factor used when a request leaves it to the broker; capped at the brokers of a cell (one per AZ)."},
    {"replica.lag.time.max.ms", MK_CFG_LONG, B, "30000", NULL, false, "A follower that has not caught up for this long leaves the ISR."},
    {"auto.leader.rebalance.enable", MK_CFG_BOOL, B, "true", NULL, false, "Give leadership back to the preferred replica once it is in sync again."},
    {"replica.selector.class", MK_CFG_STRING, B, "org.apache.kafka.common.replica.RackAwareReplicaSelector", NULL, true, "How a leader answers a Fetch v11+ that names the consumer's rack (KIP-392).  org.apache.kafka.common.replica.RackAwareReplicaSelector: with an in-sync replica in the consumer's AZ, the leader answers PreferredReadReplica and the consumer reads that follower (up to the high watermark), so its reads stay in its AZ.  Empty: every consumer reads the leader (Kafka's default, where this setting is null).  minikora defaults to rack-aware reads, as a cost-aware cloud service would; no other class is known."},
    {"minikora.cross.az.latency.ms", MK_CFG_INT, B, "0", NULL, false, "Simulated one-way latency of replication between AZs."},
    {"minikora.cost.cross.az.per.gb", MK_CFG_DOUBLE, B, "0.02", NULL, true, "Price of one GB (1e9 bytes) that crosses AZs, for the per-tenant cost in the admin API (cost = bytes / 1e9 * price); at least 0.  Default 0.02: AWS's published inter-AZ data transfer rate is 0.01 USD/GB in each direction, charged both out of the sender's AZ and into the receiver's, so every byte that crosses costs it twice."},
    {"auto.create.topics.enable", MK_CFG_BOOL, B, "true", NULL, false, "Create a topic when a Metadata request names a missing one and allows it."},
    {"delete.topic.enable", MK_CFG_BOOL, B, "true", NULL, false, "Whether DeleteTopics may delete."},
    {"socket.request.max.bytes", MK_CFG_INT, B, "104857600", NULL, true, "Largest request frame accepted; larger frames close the connection before anything is allocated."},
    {"max.connections", MK_CFG_INT, B, "2147483647", NULL, true, "Most open connections of one broker's listener; a connection past it is closed at accept, before any byte is read, with a log line."},
    {"max.connections.per.ip", MK_CFG_INT, B, "2147483647", NULL, true, "Most open connections from one IP address to one broker's listener; a connection past it is closed at accept, with a log line."},
    {"connections.max.idle.ms", MK_CFG_LONG, B, "600000", NULL, true, "A connection with no bytes read or written for this long (and no request in progress) is closed; -1 never closes one."},
    {"minikora.admin.auth.reads", MK_CFG_BOOL, B, "false", NULL, true, "The admin API's read routes and /metrics require the admin token too (/healthz and /readyz never do); acting routes always require it."},
    {"message.max.bytes", MK_CFG_INT, B, "1048588", NULL, false, "Largest record batch accepted (broker default of max.message.bytes)."},
    {"log.dirs", MK_CFG_STRING, B, "./data", NULL, true, "Data directory; each broker keeps its logs under broker-<id>/."},
    {"minikora.log.max.open.files", MK_CFG_INT, B, "0", NULL, true, "Most descriptors held open for segment files, by all brokers of the process together (three per segment: .log, .index, .timeindex).  Segments are opened on demand through an LRU cache of descriptors; the least recently used one is closed to make room.  0: a quarter of the open files limit, at least 4096 (the soft limit is raised to the hard one at start; 4096 with Debian's hard limit of 524288 would be 131072).  Always capped at half the limit.  At least 12."},
    {"log.segment.bytes", MK_CFG_INT, B, "1073741824", NULL, false, "Segment size at which a new segment is rolled."},
    {"log.roll.ms", MK_CFG_LONG, B, "604800000", NULL, false, "Age of the active segment at which a new one is rolled."},
    {"log.retention.ms", MK_CFG_LONG, B, "604800000", NULL, false, "Time a segment is kept after its newest record; -1 keeps forever."},
    {"log.retention.bytes", MK_CFG_LONG, B, "-1", NULL, false, "Size a partition log may reach before its oldest segments go; -1 is unbounded."},
    {"log.retention.check.interval.ms", MK_CFG_LONG, B, "300000", NULL, false, "How often retention runs."},
    {"log.index.interval.bytes", MK_CFG_INT, B, "4096", NULL, false, "Bytes between entries of the sparse offset index."},
    {"log.index.size.max.bytes", MK_CFG_INT, B, "10485760", NULL, false, "Largest offset index file; a full index rolls the segment."},
    {"log.flush.interval.messages", MK_CFG_LONG, B, LMAX, NULL, false, "Messages appended to a partition before it is fsynced."},
    {"log.flush.interval.ms", MK_CFG_LONG, B, LMAX, NULL, false, "Milliseconds after which appended data is fsynced."},
    {"log.cleanup.policy", MK_CFG_LIST, B, "delete", NULL, false, "Cleanup policy of topics: delete, compact, or both (compact,delete)."},
    {"log.message.timestamp.type", MK_CFG_STRING, B, "CreateTime", NULL, false, "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append."},
    {"compression.type", MK_CFG_STRING, B, "producer", NULL, false, "Batches are kept as the producer compressed them."},
    {"min.insync.replicas", MK_CFG_INT, B, "1", NULL, false, "Replicas that must have a write for acks=all."},
    {"unclean.leader.election.enable", MK_CFG_BOOL, B, "false", NULL, false, "Allow an out-of-sync replica to become leader."},
    {"fetch.max.bytes", MK_CFG_INT, B, "57671680", NULL, false, "Largest Fetch response."},
    {"group.initial.rebalance.delay.ms", MK_CFG_INT, B, "0", NULL, true, "Delay before the first rebalance of an empty group; 0 here (Kafka uses 3000) so fixtures are served at once."},
    {"group.min.session.timeout.ms", MK_CFG_INT, B, "6000", NULL, true, "Smallest session timeout a group member may ask for."},
    {"group.max.session.timeout.ms", MK_CFG_INT, B, "1800000", NULL, true, "Largest session timeout a group member may ask for."},
    {"group.max.size", MK_CFG_INT, B, "2147483647", NULL, true, "Most members in one group."},
    {"group.consumer.session.timeout.ms", MK_CFG_INT, B, "45000", NULL, true, "Session timeout of a KIP-848 consumer group member (ConsumerGroupHeartbeat): a member silent for this long is removed and its partitions go to the others.  Between group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms."},
    {"group.consumer.min.session.timeout.ms", MK_CFG_INT, B, "45000", NULL, true, "Smallest allowed group.consumer.session.timeout.ms."},
    {"group.consumer.max.session.timeout.ms", MK_CFG_INT, B, "60000", NULL, true, "Largest allowed group.consumer.session.timeout.ms."},
    {"group.consumer.heartbeat.interval.ms", MK_CFG_INT, B, "5000", NULL, true, "Heartbeat interval a consumer group member is told (HeartbeatIntervalMs).  Between group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms, and below the session timeout."},
    {"group.consumer.min.heartbeat.interval.ms", MK_CFG_INT, B, "5000", NULL, true, "Smallest allowed group.consumer.heartbeat.interval.ms."},
    {"group.consumer.max.heartbeat.interval.ms", MK_CFG_INT, B, "15000", NULL, true, "Largest allowed group.consumer.heartbeat.interval.ms."},
    {"group.consumer.max.size", MK_CFG_INT, B, "2147483647", NULL, true, "Most members in one consumer group (GROUP_MAX_SIZE_REACHED past it)."},
    {"group.consumer.assignors", MK_CFG_LIST, B, "uniform,range", NULL, true, "Server-side assignors a consumer group member may ask for (ServerAssignor); the first is the default.  uniform and range, or Kafka's class names org.apache.kafka.coordinator.group.assignor.UniformAssignor and RangeAssignor."},
    {"group.consumer.migration.policy", MK_CFG_STRING, B, "bidirectional", NULL, true, "Conversions of non-empty groups between the classic and the consumer protocol (Kafka 4.0): upgrade (a consumer member joining a classic group that uses the consumer protocol type converts it), downgrade (a consumer group left with classic members only converts back), bidirectional (both), disabled.  Empty groups always change type."},
    {"offsets.retention.minutes", MK_CFG_INT, B, "10080", NULL, true, "Committed offsets of an empty group are kept this long after their last commit."},
    {"offset.metadata.max.bytes", MK_CFG_INT, B, "4096", NULL, true, "Largest metadata string of a committed offset."},
    {"offsets.topic.num.partitions", MK_CFG_INT, B, "50", NULL, true, "Group ids hash to this many coordinator slots, spread over the running brokers."},
    {"minikora.brokers", MK_CFG_INT, B, "6", NULL, true, "Brokers in the cluster."},
    {"minikora.azs", MK_CFG_INT, B, "3", NULL, true, "Simulated availability zones; each cell has one broker per AZ."},
    {"minikora.auth.required", MK_CFG_BOOL, B, "false", NULL, true, "Refuse every request but ApiVersions, SaslHandshake and SaslAuthenticate on a connection that has not authenticated (SASL PLAIN or SCRAM with a tenant's API key): the connection is closed, as Kafka does on a SASL listener.  Frames before authentication are then limited to 512 KiB.  When false, unauthenticated connections belong to the default tenant."},
    {"minikora.tls.port", MK_CFG_INT, B, "9098", NULL, true, "First SSL listener port (--tls-port); broker i listens on it + i - 1.  Unset: the PLAINTEXT base port + the broker count (9098 by default; free ports with --port 0).  0 picks free ports; -1 disables TLS."},
    {"minikora.tls.cert", MK_CFG_STRING, B, "", NULL, true, "PEM certificate chain of the SSL listeners (--tls-cert); empty: a certificate signed by a CA made in DATA/tls/ at first start."},
    {"minikora.tls.key", MK_CFG_STRING, B, "", NULL, true, "PEM private key of minikora.tls.cert (--tls-key)."},
    {"minikora.placement.seed", MK_CFG_LONG, B, "0", NULL, true, "Seed of placement's random choices (the two cells a new tenant compares, the first broker of a topic's replicas); 0: random.  Set it to replay a placement."},
    {"minikora.cell.capacity.replicas", MK_CFG_INT, B, "3000", NULL, false, "Replicas a cell holds at full load; minikora.cell.<n>.capacity.replicas overrides it for cell n."},
    {"minikora.cell.capacity.bytes.per.sec", MK_CFG_LONG, B, "209715200", NULL, false, "Client bytes in plus out per second a cell's brokers carry at full load; minikora.cell.<n>.capacity.bytes.per.sec overrides it for cell n."},
    {"minikora.broker.capacity.requests.per.sec", MK_CFG_INT, B, "20000", NULL, false, "Requests per second a broker handles at full load (a broker's load is its request rate against it)."},
    {"quota.window.num", MK_CFG_INT, B, "11", NULL, true, "How many sample windows a client quota's rate is measured over (1 to 64; fewer than 2 counts as 2)."},
    {"quota.window.size.seconds", MK_CFG_INT, B, "1", NULL, true, "Length of one sample window of a client quota's rate, in seconds (1 to 3600)."},
    {"minikora.broker.quota.bytes.in.per.sec", MK_CFG_LONG, B, "0", NULL, false, "Produce bytes per second one broker accepts from all tenants together; past it, each tenant's allowance there is scaled down (tenants with a producer_byte_rate in proportion to it, the others sharing what is left).  0: unlimited."},
    {"minikora.broker.quota.bytes.out.per.sec", MK_CFG_LONG, B, "0", NULL, false, "Fetch bytes per second one broker serves to all tenants together; past it, each tenant's allowance there is scaled down as for bytes in.  0: unlimited."},
    {"minikora.broker.quota.request.percentage", MK_CFG_DOUBLE, B, "0", NULL, false, "Request-handling time one broker gives all tenants together, in % of one thread (the loop); past it, each tenant's allowance there is scaled down as for bytes in.  0: unlimited."},
    {"minikora.cell.load.threshold", MK_CFG_DOUBLE, B, "0.8", NULL, false, "Cell load (a fraction of capacity) above which the balancer moves the cell's heaviest tenant to a less loaded cell."},
    {"minikora.balancer.enable", MK_CFG_BOOL, B, "true", NULL, false, "Run the cell balancer."},
    {"minikora.balancer.interval.ms", MK_CFG_INT, B, "10000", NULL, false, "How often the balancer looks at cell loads."},
    {"minikora.balancer.partitions.enable", MK_CFG_BOOL, B, "false", NULL, false, "Run the within-cell partition balancer: replicas, preferred leaders and leaders evened over a cell's brokers (one replica per AZ kept; a move only when the most and least loaded brokers differ by two or more, so nothing moves back and forth). POST /v1/cells/{n}/rebalance runs one pass on demand either way."},
    {"minikora.balancer.partitions.interval.ms", MK_CFG_INT, B, "5000", NULL, false, "How often the partition balancer looks at each cell."},
    {"minikora.balancer.partitions.max.moves", MK_CFG_INT, B, "2", NULL, false, "Most partition reassignments in flight in the cluster when the partition balancer starts more (its rate limit)."},
    {"minikora.scrub.rate.bytes.per.sec", MK_CFG_LONG, B, "10485760", NULL, true, "Bytes per second the scrubber reads at most, over every broker together (at least 1).  The default reads 1 GiB of stored replicas in under two minutes."},
    {"minikora.scrub.interval.ms", MK_CFG_LONG, B, "300000", NULL, true, "Time from the end of one scrubber pass (every stored batch of every replica re-read and checked, replicas compared) to the start of the next; -1 turns passes off (the durability audit still runs)."},
    {"minikora.health.enable", MK_CFG_BOOL, B, "true", NULL, true, "The storage health manager acts on what it sees (the remediation ladder: restart, demote, replace, and a slow broker out of the ISRs); false: it only watches and reports (GET /v1/health, /metrics, events)."},
    {"minikora.health.check.interval.ms", MK_CFG_LONG, B, "1000", NULL, true, "How often the storage health manager samples every broker's storage I/O and takes the ladder's next step."},
    {"minikora.health.probe.interval.ms", MK_CFG_LONG, B, "2000", NULL, true, "How often each broker gets a synthetic produce and consume probe (a record appended to its pinned probe partition of the internal minikora-health tenant and read back)."},
    {"minikora.health.stall.ms", MK_CFG_LONG, B, "4000", NULL, true, "Step 1: a broker whose storage makes no progress this long (an operation in flight, probes failing, only errors) is fenced and restarted.  With the defaults a stalled disk is acted on within 5 s."},
    {"minikora.health.restart.grace.ms", MK_CFG_LONG, B, "4000", NULL, true, "Step 2: still no progress this long after the restart: the broker is demoted (leads nothing, stays out of the ISRs)."},
    {"minikora.health.replace.after.ms", MK_CFG_LONG, B, "60000", NULL, true, "Step 3: still no progress this long after the demotion: a new broker takes its place in the same AZ and cell, its replicas are rebuilt there and it is retired; -1: never replace."},
    {"minikora.health.recover.ms", MK_CFG_LONG, B, "3000", NULL, true, "A broker on the ladder whose storage works (probes succeed, nothing stuck) this long is healthy again: its fence is lifted and it rejoins the ISRs."},
    {"minikora.health.slow.factor", MK_CFG_DOUBLE, B, "5", NULL, true, "Step 4: a broker whose storage latency (p99, else the probes') is above this many times its healthy peers' median ..."},
    {"minikora.health.slow.min.ms", MK_CFG_LONG, B, "100", NULL, true, "... and above this many ms ..."},
    {"minikora.health.slow.for.ms", MK_CFG_LONG, B, "5000", NULL, true, "... for this long leaves the ISRs and keeps replicating (Kora's slow-broker rule), until it is not slow for minikora.health.recover.ms."},
    {"minikora.tls.ca", MK_CFG_STRING, B, "", NULL, true, "CA file clients should trust, as the ready line and file name it (--tls-ca); empty: minikora.tls.cert itself, or DATA/tls/ca.pem."},
    /* broker defaults of topic settings that have no effect here yet (their topic
     * settings are accepted, stored and shown; see cfg_effects[] below) */
    {"log.cleaner.delete.retention.ms", MK_CFG_LONG, B, "86400000", NULL, false, "How long delete tombstones are kept in a compacted topic (default of delete.retention.ms)."},
    {"log.cleaner.min.compaction.lag.ms", MK_CFG_LONG, B, "0", NULL, false, "Least time a record stays uncompacted (default of min.compaction.lag.ms)."},
    {"log.cleaner.max.compaction.lag.ms", MK_CFG_LONG, B, LMAX, NULL, false, "Most time a record may stay uncompacted (default of max.compaction.lag.ms)."},
    {"log.cleaner.min.cleanable.ratio", MK_CFG_DOUBLE, B, "0.5", NULL, false, "Dirty share of a log at which it is worth cleaning (default of min.cleanable.dirty.ratio)."},
    {"log.segment.delete.delay.ms", MK_CFG_LONG, B, "60000", NULL, false, "Wait before a deleted segment's files are removed (default of file.delete.delay.ms)."},
    {"log.roll.jitter.ms", MK_CFG_LONG, B, "0", NULL, false, "Random jitter subtracted from the segment roll time (default of segment.jitter.ms)."},
    {"log.preallocate", MK_CFG_BOOL, B, "false", NULL, false, "Preallocate segment files (default of preallocate)."},
    {"log.message.timestamp.before.max.ms", MK_CFG_LONG, B, LMAX, NULL, false, "How far in the past a CreateTime timestamp may be (default of message.timestamp.before.max.ms)."},
    {"log.message.timestamp.after.max.ms", MK_CFG_LONG, B, LMAX, NULL, false, "How far in the future a CreateTime timestamp may be (default of message.timestamp.after.max.ms)."},
    {"log.message.timestamp.difference.max.ms", MK_CFG_LONG, B, LMAX, NULL, false, "Deprecated form of the two settings above (default of message.timestamp.difference.max.ms)."},
    {"log.message.downconversion.enable", MK_CFG_BOOL, B, "true", NULL, false, "Whether old fetch versions get records converted down (default of message.downconversion.enable)."},
    {"log.message.format.version", MK_CFG_STRING, B, "3.0-IV1", NULL, false, "Deprecated: the message format is always v2 (default of message.format.version)."},
    {"compression.gzip.level", MK_CFG_INT, B, "-1", NULL, false, "gzip level when the broker compresses (default of the topic setting of the same name)."},
    {"compression.lz4.level", MK_CFG_INT, B, "9", NULL, false, "lz4 level when the broker compresses (default of the topic setting of the same name)."},
    {"compression.zstd.level", MK_CFG_INT, B, "3", NULL, false, "zstd level when the broker compresses (default of the topic setting of the same name)."},
    /* tiered storage (KIP-405 names where Kafka has them; tier/) */
    {"remote.log.storage.system.enable", MK_CFG_BOOL, B, "true", NULL, true, "Tiered storage for the whole cluster (KIP-405): sealed segments of topics with remote.storage.enable are copied to S3 (the bundled server, or minikora.s3.endpoint) and read back from there once local retention has deleted them.  minikora's default is true (Kafka's is false), as on a Kora-like service; without an S3 target (--s3-port -1 and no minikora.s3.endpoint) tiering stays off."},
    {"log.local.retention.ms", MK_CFG_LONG, B, "3600000", NULL, false, "Broker default of local.retention.ms: how long a tiered topic's segments stay on local disk once copied to S3; -2 = retention.ms.  minikora's default is one hour (Kafka's is -2), so local disk holds the recent hour and S3 the rest; it never exceeds retention.ms."},
    {"log.local.retention.bytes", MK_CFG_LONG, B, "-2", NULL, false, "Broker default of local.retention.bytes: the local size a tiered partition may keep once its segments are in S3; -2 = retention.bytes."},
    {"remote.log.manager.task.interval.ms", MK_CFG_LONG, B, "1000", NULL, true, "How often tiering looks for segments to copy, for local and remote segments to delete, and retries failed uploads and deletes (Kafka: 30000; minikora: 1000)."},
    {"remote.fetch.max.wait.ms", MK_CFG_INT, B, "500", NULL, false, "How long a Fetch that needs data from S3 waits for it before it is answered with what there is (the S3 read goes on, and the client's next Fetch finds it cached)."},
    {"minikora.s3.endpoint", MK_CFG_STRING, B, "", NULL, true, "An external S3 endpoint for tiered storage, http://host:port (MinIO, another minikora's bundled server, ...): tiering goes there instead of to the bundled server.  With it give minikora.s3.bucket, minikora.s3.access.key and minikora.s3.secret.key (the keys are never listed by DescribeConfigs).  Requests are signed with AWS signature V2 (libs3 2.0)."},
    {"minikora.s3.bucket", MK_CFG_STRING, B, "", NULL, true, "Bucket of the external endpoint (it must exist); empty: the bundled server's bucket (--s3-bucket)."},
    {"minikora.s3.region", MK_CFG_STRING, B, "us-east-1", NULL, true, "Region of the external endpoint, for the record: signature V2 does not sign it."},
    {"minikora.s3.uri.style", MK_CFG_STRING, B, "path", NULL, true, "Addressing of the external endpoint: path (http://host/bucket/key) or virtual (http://bucket.host/key)."},
    {"minikora.tier.chunk.bytes", MK_CFG_INT, B, "1048576", NULL, true, "Size of the chunks a remote segment is read in (ranged GETs, cached): each chunk is whole record batches, cut at the first batch at or past a multiple of this size."},
    {"minikora.tier.cache.memory.bytes", MK_CFG_LONG, B, "67108864", NULL, true, "Memory tier: chunks of remote segments kept in memory (least recently used go first)."},
    {"minikora.tier.cache.disk.bytes", MK_CFG_LONG, B, "1073741824", NULL, true, "Chunks of remote segments kept on local disk under DATA/tier-cache/ (emptied at start)."},
    {"minikora.tier.segment.max.bytes", MK_CFG_INT, B, "1073741824", NULL, true, "Largest segment of a tiered topic (its segment.bytes is capped to it): a segment is uploaded in one PUT (libs3 2.0 has no multipart upload), and a failed upload is sent again whole."},
    {"minikora.tier.request.timeout.ms", MK_CFG_INT, B, "30000", NULL, true, "An S3 request (PUT, GET, HEAD, DELETE) that takes longer is abandoned and counts as failed."},
    /* topic settings (name, broker synonym): every topic setting Apache Kafka defines */
    {"cleanup.policy", MK_CFG_LIST, T, "delete", "log.cleanup.policy", false, "delete, compact, or both (compact,delete)."},
    {"compression.type", MK_CFG_STRING, T, "producer", "compression.type", false, "Compression of stored batches: producer keeps the producer's."},
    {"compression.gzip.level", MK_CFG_INT, T, "-1", "compression.gzip.level", false, "gzip level when the broker compresses: 1..9, or -1 for the codec's default."},
    {"compression.lz4.level", MK_CFG_INT, T, "9", "compression.lz4.level", false, "lz4 level when the broker compresses: 1..17."},
    {"compression.zstd.level", MK_CFG_INT, T, "3", "compression.zstd.level", false, "zstd level when the broker compresses: -131072..22."},
    {"delete.retention.ms", MK_CFG_LONG, T, "86400000", "log.cleaner.delete.retention.ms", false, "How long tombstones are kept in a compacted topic."},
    {"file.delete.delay.ms", MK_CFG_LONG, T, "60000", "log.segment.delete.delay.ms", false, "Wait before a deleted segment's files are removed."},
    {"flush.messages", MK_CFG_LONG, T, LMAX, "log.flush.interval.messages", false, "Messages between fsyncs."},
    {"flush.ms", MK_CFG_LONG, T, LMAX, "log.flush.interval.ms", false, "Milliseconds between fsyncs."},
    {"follower.replication.throttled.replicas", MK_CFG_LIST, T, "", NULL, false, "Replicas whose follower traffic is throttled: partition:broker pairs, or *."},
    {"index.interval.bytes", MK_CFG_INT, T, "4096", "log.index.interval.bytes", false, "Bytes between offset index entries."},
    {"leader.replication.throttled.replicas", MK_CFG_LIST, T, "", NULL, false, "Replicas whose leader traffic is throttled: partition:broker pairs, or *."},
    {"local.retention.bytes", MK_CFG_LONG, T, "-2", "log.local.retention.bytes", false, "Local size a tiered partition keeps once its segments are in S3 (-2: retention.bytes); never more than retention.bytes."},
    {"local.retention.ms", MK_CFG_LONG, T, "-2", "log.local.retention.ms", false, "How long a tiered topic's segments stay on local disk once copied to S3 (-2: retention.ms); never more than retention.ms.  A segment is deleted locally only after its copy in S3 is verified."},
    {"max.compaction.lag.ms", MK_CFG_LONG, T, LMAX, "log.cleaner.max.compaction.lag.ms", false, "Most time a record may stay uncompacted."},
    {"max.message.bytes", MK_CFG_INT, T, "1048588", "message.max.bytes", false, "Largest record batch accepted."},
    {"message.downconversion.enable", MK_CFG_BOOL, T, "true", "log.message.downconversion.enable", false, "Whether old fetch versions get records converted down."},
    {"message.format.version", MK_CFG_STRING, T, "3.0-IV1", "log.message.format.version", false, "Deprecated: the message format is always v2."},
    {"message.timestamp.after.max.ms", MK_CFG_LONG, T, LMAX, "log.message.timestamp.after.max.ms", false, "How far in the future a CreateTime timestamp may be."},
    {"message.timestamp.before.max.ms", MK_CFG_LONG, T, LMAX, "log.message.timestamp.before.max.ms", false, "How far in the past a CreateTime timestamp may be."},
    {"message.timestamp.difference.max.ms", MK_CFG_LONG, T, LMAX, "log.message.timestamp.difference.max.ms", false, "Deprecated form of the two settings above."},
    {"message.timestamp.type", MK_CFG_STRING, T, "CreateTime", "log.message.timestamp.type", false, "CreateTime or LogAppendTime."},
    {"min.cleanable.dirty.ratio", MK_CFG_DOUBLE, T, "0.5", "log.cleaner.min.cleanable.ratio", false, "Dirty share of a log at which it is worth cleaning."},
    {"min.compaction.lag.ms", MK_CFG_LONG, T, "0", "log.cleaner.min.compaction.lag.ms", false, "Least time a record stays uncompacted."},
    {"min.insync.replicas", MK_CFG_INT, T, "1", "min.insync.replicas", false, "Replicas that must have a write for acks=all."},
    {"preallocate", MK_CFG_BOOL, T, "false", "log.preallocate", false, "Preallocate segment files."},
    {"remote.log.copy.disable", MK_CFG_BOOL, T, "false", NULL, false, "Stop copying segments of a tiered topic to remote storage."},
    {"remote.log.delete.on.disable", MK_CFG_BOOL, T, "false", NULL, false, "Delete the remote data when remote storage is turned off."},
    {"remote.storage.enable", MK_CFG_BOOL, T, "true", NULL, false, "Tier this topic's sealed segments to S3 (KIP-405).  minikora's default is true (Kafka's is false); it takes effect while remote.log.storage.system.enable is true and an S3 target exists."},
    {"retention.bytes", MK_CFG_LONG, T, "-1", "log.retention.bytes", false, "Partition size past which old segments go."},
    {"retention.ms", MK_CFG_LONG, T, "604800000", "log.retention.ms", false, "Time data is kept; -1 keeps forever."},
    {"segment.bytes", MK_CFG_INT, T, "1073741824", "log.segment.bytes", false, "Segment size."},
    {"segment.index.bytes", MK_CFG_INT, T, "10485760", "log.index.size.max.bytes", false, "Largest offset index."},
    {"segment.jitter.ms", MK_CFG_LONG, T, "0", "log.roll.jitter.ms", false, "Random jitter subtracted from segment.ms."},
    {"segment.ms", MK_CFG_LONG, T, "604800000", "log.roll.ms", false, "Segment age at which a new one is rolled."},
    {"unclean.leader.election.enable", MK_CFG_BOOL, T, "false", "unclean.leader.election.enable", false, "Allow an out-of-sync replica to become leader."},
};

const mk_cfg_def_t *mk_cluster_cfg_defs(int *count)
{
    *count = (int)MK_ARRAY_LEN(defs);
    return defs;
}

/* Broker settings first: a name that is both (compression.type) resolves to
 * the broker entry here; topic lookups go through mk_cluster_cfg_topic_def(). */
const mk_cfg_def_t *mk_cluster_cfg_def_find(const char *name)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

const mk_cfg_def_t *mk_cluster_cfg_topic_def(const char *name)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(defs); i++)
        if (defs[i].scope == T && strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

/* Kafka's range checks of numeric settings (ConfigDef validators), by name;
 * the broker synonyms share their topic setting's range. */
static const struct {
    const char *name;
    double lo, hi;
} ranges[] = {
    {"group.consumer.session.timeout.ms", 1, INT32_MAX},
    {"group.consumer.min.session.timeout.ms", 1, INT32_MAX},
    {"group.consumer.max.session.timeout.ms", 1, INT32_MAX},
    {"group.consumer.heartbeat.interval.ms", 1, INT32_MAX},
    {"group.consumer.min.heartbeat.interval.ms", 1, INT32_MAX},
    {"group.consumer.max.heartbeat.interval.ms", 1, INT32_MAX},
    {"group.consumer.max.size", 1, INT32_MAX},
    {"segment.bytes", 14, INT32_MAX},        /* Kafka 3.9: LegacyRecord.RECORD_OVERHEAD_V0 */
    {"log.segment.bytes", 14, INT32_MAX},
    {"segment.ms", 1, 9.3e18},
    {"log.roll.ms", 1, 9.3e18},
    {"segment.jitter.ms", 0, 9.3e18},
    {"log.roll.jitter.ms", 0, 9.3e18},
    {"segment.index.bytes", 4, INT32_MAX},
    {"log.index.size.max.bytes", 4, INT32_MAX},
    {"flush.messages", 1, 9.3e18},
    {"log.flush.interval.messages", 1, 9.3e18},
    {"flush.ms", 0, 9.3e18},
    {"retention.ms", -1, 9.3e18},
    {"log.retention.ms", -1, 9.3e18},
    {"max.message.bytes", 0, INT32_MAX},
    {"message.max.bytes", 0, INT32_MAX},
    {"index.interval.bytes", 0, INT32_MAX},
    {"log.index.interval.bytes", 0, INT32_MAX},
    {"delete.retention.ms", 0, 9.3e18},
    {"log.cleaner.delete.retention.ms", 0, 9.3e18},
    {"min.compaction.lag.ms", 0, 9.3e18},
    {"log.cleaner.min.compaction.lag.ms", 0, 9.3e18},
    {"max.compaction.lag.ms", 1, 9.3e18},
    {"log.cleaner.max.compaction.lag.ms", 1, 9.3e18},
    {"file.delete.delay.ms", 0, 9.3e18},
    {"log.segment.delete.delay.ms", 0, 9.3e18},
    {"min.cleanable.dirty.ratio", 0, 1},
    {"log.cleaner.min.cleanable.ratio", 0, 1},
    {"min.insync.replicas", 1, INT32_MAX},
    {"message.timestamp.after.max.ms", 0, 9.3e18},
    {"message.timestamp.before.max.ms", 0, 9.3e18},
    {"message.timestamp.difference.max.ms", 0, 9.3e18},
    {"log.message.timestamp.after.max.ms", 0, 9.3e18},
    {"log.message.timestamp.before.max.ms", 0, 9.3e18},
    {"log.message.timestamp.difference.max.ms", 0, 9.3e18},
    {"compression.lz4.level", 1, 17},
    {"compression.zstd.level", -131072, 22},
    {"local.retention.ms", -2, 9.3e18},
    {"local.retention.bytes", -2, 9.3e18},
    {"log.local.retention.ms", -2, 9.3e18},
    {"log.local.retention.bytes", -2, 9.3e18},
    {"max.connections", 0, INT32_MAX},         /* Kafka: at least 0 */
    {"max.connections.per.ip", 0, INT32_MAX},
    {"minikora.scrub.rate.bytes.per.sec", 1, 9.3e18},
    {"minikora.scrub.interval.ms", -1, 9.3e18},
    {"minikora.health.check.interval.ms", 10, 3600000},
    {"minikora.health.probe.interval.ms", 10, 3600000},
    {"minikora.health.stall.ms", 1, 9.3e18},
    {"minikora.health.restart.grace.ms", 1, 9.3e18},
    {"minikora.health.replace.after.ms", -1, 9.3e18},
    {"minikora.health.recover.ms", 0, 9.3e18},
    {"minikora.health.slow.factor", 1, 1e6},
    {"minikora.health.slow.min.ms", 0, 9.3e18},
    {"minikora.health.slow.for.ms", 0, 9.3e18},
    {"quota.window.num", 1, 64},
    {"quota.window.size.seconds", 1, 3600},
    {"minikora.broker.quota.bytes.in.per.sec", 0, 9.3e18},
    {"minikora.broker.quota.bytes.out.per.sec", 0, 9.3e18},
    {"minikora.broker.quota.request.percentage", 0, 100000},
    {"remote.fetch.max.wait.ms", 1, INT32_MAX},
    {"minikora.tier.chunk.bytes", 1, INT32_MAX},
    {"minikora.tier.segment.max.bytes", 1, INT32_MAX},
    {"minikora.tier.request.timeout.ms", 1, INT32_MAX},
    {"remote.log.manager.task.interval.ms", 1, 9.3e18},
    {"minikora.tier.cache.memory.bytes", 0, 9.3e18},
    {"minikora.tier.cache.disk.bytes", 0, 9.3e18},
    {"minikora.cost.cross.az.per.gb", 0, 1e300},   /* a price */
};

static bool in_range(const char *name, double x)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(ranges); i++)
        if (strcmp(ranges[i].name, name) == 0)
            return x >= ranges[i].lo && x <= ranges[i].hi;
    return true;
}

/* A replica throttle list (Kafka's ThrottledReplicaListValidator): empty,
 * "*", or partition:broker pairs separated by commas. */
static bool throttled_list_valid(const char *v)
{
    while (*v == ' ')
        v++;
    if (!*v || strcmp(v, "*") == 0)
        return true;
    for (;;) {
        while (*v == ' ')
            v++;
        if (!isdigit((unsigned char)*v))
            return false;
        while (isdigit((unsigned char)*v))
            v++;
        if (*v++ != ':' || !isdigit((unsigned char)*v))
            return false;
        while (isdigit((unsigned char)*v))
            v++;
        while (*v == ' ')
            v++;
        if (!*v)
            return true;
        if (*v++ != ',')
            return false;
    }
}

/* group.consumer.assignors: a non-empty list of uniform and range (short
 * names or Kafka's class names). */
static bool assignors_valid(const char *v)
{
    static const char *known[] = {"uniform", "range", "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
                                  "org.apache.kafka.coordinator.group.assignor.RangeAssignor"};
    if (!*v)
        return false;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
            ok = strlen(known[i]) == n && strncmp(known[i], p, n) == 0;
        if (!ok)
            return false;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

bool mk_cluster_config_value_valid(const mk_cfg_def_t *d, const char *v)
{
    char *end;
    if (!v)
        return false;
    switch (d->type) {
    case MK_CFG_BOOL:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
    case MK_CFG_INT: case MK_CFG_SHORT: case MK_CFG_LONG: {
        if (!*v)
            return false;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end)
            return false;
        if (d->type == MK_CFG_INT && (x < INT32_MIN || x > INT32_MAX))
            return false;
        if (d->type == MK_CFG_SHORT && (x < INT16_MIN || x > INT16_MAX))
            return false;
        if (strcmp(d->name, "compression.gzip.level") == 0)
            return x == -1 || (x >= 1 && x <= 9);
        return in_range(d->name, (double)x);
    }
    case MK_CFG_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x))
            return false;
        return in_range(d->name, x);
    }
    default:
        break;
    }
    if (strcmp(d->name, "message.timestamp.type") == 0 || strcmp(d->name, "log.message.timestamp.type") == 0)
        return strcmp(v, "CreateTime") == 0 || strcmp(v, "LogAppendTime") == 0;
    if (strcmp(d->name, "cleanup.policy") == 0 || strcmp(d->name, "log.cleanup.policy") == 0)
        return strcmp(v, "delete") == 0 || strcmp(v, "compact") == 0 || strcmp(v, "compact,delete") == 0 ||
               strcmp(v, "delete,compact") == 0;
    if (strcmp(d->name, "group.consumer.migration.policy") == 0)
        return strcasecmp(v, "disabled") == 0 || strcasecmp(v, "upgrade") == 0 || strcasecmp(v, "downgrade") == 0 ||
               strcasecmp(v, "bidirectional") == 0;
    if (strcmp(d->name, "group.consumer.assignors") == 0)
        return assignors_valid(v);
    if (strcmp(d->name, "minikora.s3.uri.style") == 0)
        return strcmp(v, "path") == 0 || strcmp(v, "virtual") == 0;
    if (strcmp(d->name, "minikora.s3.endpoint") == 0)
        return !*v || strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0;
    if (strcmp(d->name, "replica.selector.class") == 0)
        return !*v || strcmp(v, "org.apache.kafka.common.replica.RackAwareReplicaSelector") == 0;
    if (strcmp(d->name, "compression.type") == 0)
        return strcmp(v, "producer") == 0 || strcmp(v, "uncompressed") == 0 || strcmp(v, "gzip") == 0 ||
               strcmp(v, "snappy") == 0 || strcmp(v, "lz4") == 0 || strcmp(v, "zstd") == 0;
    if (strcmp(d->name, "leader.replication.throttled.replicas") == 0 ||
        strcmp(d->name, "follower.replication.throttled.replicas") == 0)
        return throttled_list_valid(v);
    if (strcmp(d->name, "message.format.version") == 0 || strcmp(d->name, "log.message.format.version") == 0) {
        /* a Kafka version such as 2.8, 3.0-IV1 or 0.10.2: digits and dots first */
        if (!isdigit((unsigned char)*v))
            return false;
        while (isdigit((unsigned char)*v) || *v == '.')
            v++;
        return !*v || *v == '-';
    }
    return true;
}

/* ============================================== settings without effect yet */

/* Topic settings (and their broker defaults) that are accepted, validated,
 * stored and described, but do not change behaviour yet: what each lacks.
 * docs/COMPATIBILITY.md lists them (minikora apis --markdown). */
static const struct {
    const char *name;
    const char *note;
} effects[] = {
    {"compression.type", "batches are stored as the producer compressed them (producer); zstd refuses Fetch below v10, as Kafka; other values are stored, not applied"},
    {"compression.gzip.level", "no effect: the broker does not recompress"},
    {"compression.lz4.level", "no effect: the broker does not recompress"},
    {"compression.zstd.level", "no effect: the broker does not recompress"},
    {"file.delete.delay.ms", "no effect: deleted segments are removed at once, on the threadpool"},
    {"segment.jitter.ms", "no effect: segments roll at segment.ms exactly"},
    {"preallocate", "no effect: segment files grow as written"},
    {"message.timestamp.after.max.ms", "no effect: timestamps are not checked against the broker clock"},
    {"message.timestamp.before.max.ms", "no effect: timestamps are not checked against the broker clock"},
    {"message.timestamp.difference.max.ms", "no effect: timestamps are not checked against the broker clock"},
    {"message.downconversion.enable", "no effect: Fetch v0-3 (the versions that need down-conversion) are not offered"},
    {"message.format.version", "no effect: the message format is always v2"},
    {"leader.replication.throttled.replicas", "no effect: replication is not throttled"},
    {"follower.replication.throttled.replicas", "no effect: replication is not throttled"},
    {"remote.log.copy.disable", "no effect until tiered storage exists"},
    {"remote.log.delete.on.disable", "no effect until tiered storage exists"},
};

const char *mk_cluster_cfg_effect(const char *name)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(effects); i++)
        if (strcmp(effects[i].name, name) == 0)
            return effects[i].note;
    return NULL;
}

void mk_cluster_config_init(mk_config_t *c)
{
    mk_map_init(&c->values);
    mk_map_init(&c->dynamic);
}

static void map_free_values(mk_map_t *m)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v))
        mk_free(v);
    mk_map_free(m);
}

void mk_cluster_config_free(mk_config_t *c)
{
    map_free_values(&c->values);
    map_free_values(&c->dynamic);
}

static void dyn_key(int32_t broker, const char *name, char *buf, size_t n)
{
    if (broker < 0)
        snprintf(buf, n, "*|%s", name);
    else
        snprintf(buf, n, "%d|%s", (int)broker, name);
}

int mk_cluster_config_set_dynamic(mk_config_t *c, int32_t broker, const char *name, const char *value)
{
    char k[300];
    dyn_key(broker, name, k, sizeof(k));
    char *old = mk_map_get(&c->dynamic, k);
    if (!value) {
        if (old) {
            mk_map_del(&c->dynamic, k);
            mk_free(old);
        }
        return 0;
    }
    char *v = mk_strdup(value);
    if (!v || mk_map_put(&c->dynamic, k, v) < 0) {
        mk_free(v);
        return MK_ERR_NOMEM;
    }
    mk_free(old);
    return 0;
}

const char *mk_cluster_config_dynamic(const mk_config_t *c, int32_t broker, const char *name)
{
    char k[300];
    dyn_key(broker, name, k, sizeof(k));
    return mk_map_get(&c->dynamic, k);
}

const char *mk_cluster_config_static(const mk_config_t *c, const char *name) { return mk_map_get(&c->values, name); }

const char *mk_cluster_config_get_for(const mk_config_t *c, int32_t broker, const char *name, int *source)
{
    const char *v;
    int src = MK_CFG_SRC_DEFAULT;
    if (broker >= 0 && (v = mk_cluster_config_dynamic(c, broker, name)))
        src = MK_CFG_SRC_DYNAMIC_BROKER;
    else if ((v = mk_cluster_config_dynamic(c, -1, name)))
        src = MK_CFG_SRC_DYNAMIC_DEFAULT_BROKER;
    else if ((v = mk_map_get(&c->values, name)))
        src = MK_CFG_SRC_STATIC_BROKER;
    else {
        const mk_cfg_def_t *d = mk_cluster_cfg_def_find(name);
        v = d ? d->dflt : NULL;
    }
    if (source)
        *source = src;
    return v;
}

/* The id of minikora.tenant.<id><post>, its length (0: not that form). */
static size_t tenant_setting_id(const char *name, const char *post, char *id, size_t id_len)
{
    static const char pre[] = "minikora.tenant.";
    size_t n = strlen(name), pl = strlen(post);
    if (n <= sizeof(pre) - 1 + pl || strncmp(name, pre, sizeof(pre) - 1) != 0 || strcmp(name + n - pl, post) != 0)
        return 0;
    size_t idl = n - (sizeof(pre) - 1) - pl;
    if (id && id_len)
        snprintf(id, id_len, "%.*s", (int)idl, name + sizeof(pre) - 1);
    return idl;
}

size_t mk_cluster_cfg_tenant_keys_id(const char *name, char *id, size_t id_len)
{
    return tenant_setting_id(name, ".keys", id, id_len);
}

size_t mk_cluster_cfg_tenant_quotas_id(const char *name, char *id, size_t id_len)
{
    return tenant_setting_id(name, ".quotas", id, id_len);
}

bool mk_cluster_cfg_is_s3_credential(const char *name)
{
    return strcmp(name, "minikora.s3.access.key") == 0 || strcmp(name, "minikora.s3.secret.key") == 0;
}

int mk_cluster_config_set(mk_config_t *c, const char *name, const char *value, char *why, size_t why_len)
{
    const mk_cfg_def_t *d = mk_cluster_cfg_def_find(name);
    if (!d && (mk_cluster_cfg_tenant_keys_id(name, NULL, 0) || mk_cluster_cfg_tenant_quotas_id(name, NULL, 0) ||
               mk_cluster_cfg_is_s3_credential(name))) {
        char *v = mk_strdup(value), *old = mk_map_get(&c->values, name);
        if (!v || mk_map_put(&c->values, name, v) < 0) {
            mk_free(v);
            return MK_ERR_NOMEM;
        }
        mk_free(old);
        return 0;
    }
    if (!d) {
        if (why)
            snprintf(why, why_len, "unknown setting '%s'", name);
        return MK_ERR_NOT_FOUND;
    }
    /* A topic setting given for the whole broker (max.message.bytes) sets
     * the broker setting that supplies its default (message.max.bytes). */
    if (d->scope == MK_CFG_SCOPE_TOPIC && d->broker_name) {
        name = d->broker_name;
        d = mk_cluster_cfg_def_find(name);
    }
    if (!mk_cluster_config_value_valid(d, value)) {
        if (why)
            snprintf(why, why_len, "invalid value '%s' for %s", value, name);
        return MK_ERR_INVALID;
    }
    char *v = mk_strdup(value);
    if (!v)
        return MK_ERR_NOMEM;
    char *old = mk_map_get(&c->values, name);
    if (mk_map_put(&c->values, name, v) < 0) {
        mk_free(v);
        return MK_ERR_NOMEM;
    }
    mk_free(old);
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int mk_cluster_config_load_file(mk_config_t *c, const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return MK_ERR_IO;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *sep = strpbrk(s, "=:");
        if (!sep) {
            snprintf(why, why_len, "%s:%d: expected key=value", path, lineno);
            rc = MK_ERR_INVALID;
            break;
        }
        *sep = 0;
        char *k = trim(s), *v = trim(sep + 1);
        char sub[256];
        rc = mk_cluster_config_set(c, k, v, sub, sizeof(sub));
        if (rc < 0) {
            snprintf(why, why_len, "%s:%d: %s", path, lineno, sub);
            break;
        }
    }
    fclose(f);
    return rc;
}

const char *mk_cluster_config_get(const mk_config_t *c, const char *name)
{
    return mk_cluster_config_get_for(c, -1, name, NULL);
}

bool mk_cluster_config_is_set(const mk_config_t *c, const char *name)
{
    return mk_map_get(&c->values, name) != NULL || mk_cluster_config_dynamic(c, -1, name) != NULL;
}

int64_t mk_cluster_config_get_i64(const mk_config_t *c, const char *name)
{
    const char *v = mk_cluster_config_get(c, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

bool mk_cluster_config_get_bool(const mk_config_t *c, const char *name)
{
    const char *v = mk_cluster_config_get(c, name);
    return v && strcmp(v, "true") == 0;
}
