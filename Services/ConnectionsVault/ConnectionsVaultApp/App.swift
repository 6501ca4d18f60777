import ConnectionsVault
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: ConnectionsVaultService.name, defaultPort: ConnectionsVaultService.defaultPort, build: ConnectionsVaultService.buildApplication)
    }
}
