// pgjdbc probe for drivers_diff.py: DriverManager.getConnection(url) (no extra Properties, as
// an app with a JDBC URL does), then SELECT 1. Prints OK (exit 0) or the exception class,
// SQLState and message (exit 1). Adapted from notes/dialects/clients/Client.java.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class Client {
  public static void main(String[] args) {
    try (Connection c = DriverManager.getConnection(args[0]);
         Statement st = c.createStatement();
         ResultSet rs = st.executeQuery("SELECT 1")) {
      rs.next();
      System.out.println("OK " + rs.getString(1));
      System.exit(0);
    } catch (SQLException e) {
      System.out.println("ERROR " + e.getClass().getName() + " [SQLState " + e.getSQLState() + "]: " + e.getMessage());
      System.exit(1);
    } catch (Throwable e) {
      System.out.println("ERROR " + e.getClass().getName() + ": " + e.getMessage());
      System.exit(1);
    }
  }
}
