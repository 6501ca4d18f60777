import AuthGateway
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: AuthGatewayService.name, defaultPort: AuthGatewayService.defaultPort, build: AuthGatewayService.buildApplication)
    }
}
