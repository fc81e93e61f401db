/** The little of json-server 0.17 the side-by-side test uses (it ships no types). */
declare module 'json-server' {
  import type { RequestListener } from 'node:http';
  interface App extends RequestListener {
    use(handler: unknown): App;
  }
  const jsonServer: {
    create(): App;
    router(data: object): unknown;
  };
  export default jsonServer;
}
