FROM registry.test:5000/fx-base-a-web:testing
LABEL port0="8000"
LABEL port1="8080"
RUN echo "app=web" >> /etc/fixture-stamps