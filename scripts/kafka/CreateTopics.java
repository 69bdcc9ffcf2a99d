// Creates the pasban.* topics on a local broker with kafka-clients' AdminClient.
// Run as a single-file source program (Java 11+), so no build step and no kafka-tools:
//   java -cp "libs/*" CreateTopics.java BOOTSTRAP NAME:PARTITIONS[:key=value,...] ...
// A topic that already exists (auto-created by an early client, or made by an
// older version of this list) gets the listed configs set, and a warning if its
// partition count differs. Exit 0 when every topic exists with its configs.
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

public class CreateTopics {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: CreateTopics BOOTSTRAP NAME:PARTITIONS[:k=v,...]...");
            System.exit(2);
        }
        List<NewTopic> topics = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            String[] f = args[i].split(":", 3);
            NewTopic t = new NewTopic(f[0], Integer.parseInt(f[1]), (short) 1);
            if (f.length == 3) {
                Map<String, String> cfg = new HashMap<>();
                for (String kv : f[2].split(",")) {
                    String[] p = kv.split("=", 2);
                    cfg.put(p[0], p[1]);
                }
                t.configs(cfg);
            }
            topics.add(t);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        int failed = 0;
        try (Admin admin = Admin.create(props)) {
            CreateTopicsResult res = admin.createTopics(topics);
            for (NewTopic t : topics) {
                try {
                    res.values().get(t.name()).get();
                    System.out.println("created " + t.name() + " (" + t.numPartitions() + " partitions"
                                       + (t.configs() == null ? "" : ", " + t.configs()) + ")");
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof TopicExistsException) {
                        failed += ensure(admin, t);
                        continue;
                    }
                    System.err.println("cannot create " + t.name() + ": " + e.getCause());
                    failed++;
                }
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    // An existing topic: set the listed configs (no-op when equal), check partitions.
    static int ensure(Admin admin, NewTopic t) throws InterruptedException {
        try {
            int parts = admin.describeTopics(List.of(t.name())).allTopicNames().get()
                             .get(t.name()).partitions().size();
            if (parts != t.numPartitions())
                System.out.println("warning: " + t.name() + " has " + parts + " partitions, not "
                                   + t.numPartitions() + " (kafka-local reset starts afresh)");
            if (t.configs() == null || t.configs().isEmpty())
                return 0;
            List<AlterConfigOp> ops = new ArrayList<>();
            for (Map.Entry<String, String> c : t.configs().entrySet())
                ops.add(new AlterConfigOp(new ConfigEntry(c.getKey(), c.getValue()),
                                          AlterConfigOp.OpType.SET));
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t.name());
            admin.incrementalAlterConfigs(Map.of(r, ops)).all().get();
            return 0;
        } catch (ExecutionException e) {
            System.err.println("cannot check " + t.name() + ": " + e.getCause());
            return 1;
        }
    }
}
