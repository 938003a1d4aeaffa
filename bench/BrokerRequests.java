// Prints the broker's request counters (JMX, kafka.network RequestMetrics RequestsPerSec Count) as
// "<request type> <count>" lines: `java bench/BrokerRequests.java HOST:PORT` (bench/request_cost.py runs it).
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class BrokerRequests {
    public static void main(String[] args) throws Exception {
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + args[0] + "/jmxrmi");
        try (JMXConnector connector = JMXConnectorFactory.connect(url)) {
            MBeanServerConnection conn = connector.getMBeanServerConnection();
            ObjectName pattern = new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*");
            for (ObjectName name : conn.queryNames(pattern, null)) {
                Object count = conn.getAttribute(name, "Count");
                System.out.println(name.getKeyProperty("request") + " " + count);
            }
        }
    }
}
