// Creates the pasban.* topics on a local broker with kafka-clients' AdminClient.
// Run as a single-file source program (Java 11+), so no build step and no kafka-tools:
//   java -cp "libs/*" CreateTopics.java BOOTSTRAP NAME:PARTITIONS[:key=value,...] ...
// Topics that already exist are left as they are. Exit 0 when every topic exists.
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
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
                    if (e.getCause() instanceof TopicExistsException)
                        continue; // a second start: nothing to do
                    System.err.println("cannot create " + t.name() + ": " + e.getCause());
                    failed++;
                }
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}
